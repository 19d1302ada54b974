import ArgumentParser
import SAMTrain

/// `samtrain variants`: the registry, one variant per line (name, passes per step with its
/// defaults, summary), for people and for scripts that loop over every variant.
struct VariantsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "variants",
        abstract: "List the SAM variants (--sam values): name, forward+backward passes per step, summary."
    )

    @Flag(help: "Print the names only, one per line.")
    var names = false

    func run() {
        let all = VariantRegistry.defaults
        for name in all.names {
            let options = all[name]!.resolved(all: all)
            if names {
                print(name)
            } else {
                let passes = options.passesPerStep
                let text = passes == passes.rounded() ? String(Int(passes)) : String(format: "%.2f", passes)
                print("\(name)\t\(text)\t\(type(of: options).summary)")
            }
        }
    }
}
