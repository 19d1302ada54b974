import SAMTrain
print("samtrain: under construction")
