import SwiftUI

struct ContentView: View {
    @ObservedObject var model: AskModel

    var body: some View {
        NavigationView {
            Form {
                Section {
                    TextField("Question", text: $model.question)
                    HStack {
                        Button("Ask") { Task { await model.ask() } }
                            .disabled(!model.ready || model.asking || model.question.isEmpty)
                        Spacer()
                        Button("Cancel", role: .cancel) { model.cancel() }
                            .disabled(!model.asking)
                    }
                    // In a Form row, bordered buttons would share one tap target.
                    .buttonStyle(.borderless)
                } footer: {
                    Text(model.status)
                }
                if !model.answer.isEmpty {
                    Section("Answer") {
                        Text(model.answer)
                    }
                }
                if !model.citations.isEmpty {
                    Section("Citations") {
                        ForEach(Array(model.citations.enumerated()), id: \.offset) { index, citation in
                            VStack(alignment: .leading, spacing: 4) {
                                Text("[\(index + 1)] \(citation.source)"
                                    + (citation.page.map { ", p. \($0)" } ?? "")
                                    + (citation.heading.map { ", § \($0)" } ?? ""))
                                    .font(.caption)
                                    .foregroundStyle(.secondary)
                                Text(citation.snippet)
                                    .font(.callout)
                            }
                        }
                    }
                }
            }
            .navigationTitle("pith")
        }
        .navigationViewStyle(.stack)
    }
}
