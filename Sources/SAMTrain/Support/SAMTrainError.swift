/// An error meant for the user: bad flags, bad files, an invalid setting. Its message is
/// printed as it is (one line, naming the file or flag), never with a stack trace.
public struct SAMTrainError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
