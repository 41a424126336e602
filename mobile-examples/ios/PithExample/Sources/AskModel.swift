import Foundation
import Pith

/// Hands answer pieces from pith's ask thread to an AsyncStream, which keeps their order.
final class StreamingListener: AnswerListener {
    private let sink: AsyncStream<String>.Continuation

    init(_ sink: AsyncStream<String>.Continuation) {
        self.sink = sink
    }

    func onText(text: String) {
        sink.yield(text)
    }
}

@MainActor
final class AskModel: ObservableObject {
    @Published var question = "How many eggs does the queen lay a day?"
    @Published private(set) var status = "Preparing the models…"
    @Published private(set) var ready = false
    @Published private(set) var asking = false
    @Published private(set) var answer = ""
    @Published private(set) var citations: [Citation] = []

    private var engine: Engine?
    private var cancelHandle: CancelHandle?

    func start() async {
        guard engine == nil else { return }
        do {
            // Copying, loading and embedding block: keep them off the main actor.
            let (engine, sample) = try await Task.detached(priority: .userInitiated) {
                try AskModel.openEngine()
            }.value
            self.engine = engine
            ready = true
            let stored = sample.duplicate ? "already stored" : "\(sample.passages) passages stored"
            status = "Ready on \(engine.device()); honeybees.txt \(stored)"
        } catch {
            status = "Cannot open pith: \(error)"
        }
    }

    func ask() async {
        guard let engine, !asking else { return }
        let handle = CancelHandle()
        cancelHandle = handle
        answer = ""
        citations = []
        asking = true
        status = "Thinking…"
        defer { asking = false }

        let (pieces, sink) = AsyncStream.makeStream(of: String.self)
        defer { sink.finish() }
        let shown = Task { for await piece in pieces { answer += piece } }
        do {
            let result = try await engine.askAsync(
                question: question,
                config: AskConfig(k: 3, maxTokens: 128),
                listener: StreamingListener(sink),
                cancel: handle
            )
            sink.finish()
            await shown.value
            answer = result.text
            citations = result.citations
            let stats = result.stats
            status = "First token after \(Int(stats.firstTokenMs)) ms; context pruned from "
                + "\(stats.contextTokensBefore) to \(stats.contextTokensAfter) tokens"
        } catch PithError.Cancelled(_) {
            status = "Cancelled"
        } catch {
            status = "Failed: \(error)"
        }
    }

    func cancel() {
        cancelHandle?.cancel()
    }

    /// Copies the bundled models to Application Support once, opens the engine and
    /// ingests the sample.
    nonisolated private static func openEngine() throws -> (Engine, IngestResult) {
        let files = FileManager.default
        guard let bundled = Bundle.main.url(forResource: "Bundled", withExtension: nil) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [
                NSLocalizedDescriptionKey: "The app has no Bundled folder: run prepare.sh, then xcodegen generate",
            ])
        }
        let support = try files.url(
            for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
        var models = support.appendingPathComponent("models")
        if !files.fileExists(atPath: models.path) {
            // Copied under another name and renamed when complete, so a first run that is
            // killed mid-copy starts over instead of opening half a model.
            let partial = support.appendingPathComponent("models.partial")
            try? files.removeItem(at: partial)
            try files.copyItem(at: bundled.appendingPathComponent("models"), to: partial)
            try files.moveItem(at: partial, to: models)
            // The app can always copy them again, so 190 MB stay out of the user's backups.
            var values = URLResourceValues()
            values.isExcludedFromBackup = true
            try models.setResourceValues(values)
        }
        let engine = try Engine.open(config: EngineConfig(
            modelsDir: models.path,
            dbPath: support.appendingPathComponent("pith.db").path
            // No device: the GPU through wgpu and Metal, or the CPU when no adapter answers.
        ))
        let sample = try String(contentsOf: bundled.appendingPathComponent("honeybees.txt"), encoding: .utf8)
        // Safe on every launch: content already stored is recognised before any embedding.
        let ingested = try engine.ingestText(source: "honeybees.txt", text: sample, metadataJson: nil, progress: nil)
        return (engine, ingested)
    }
}
