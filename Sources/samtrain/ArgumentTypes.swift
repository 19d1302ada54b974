import ArgumentParser
import SAMTrain

// The library's enumerations as command-line values: ArgumentParser checks them and lists
// them in --help and in its error messages.
extension Architecture: ExpressibleByArgument {}
extension DatasetKind: ExpressibleByArgument {}
extension Augmentation.Kind: ExpressibleByArgument {}
