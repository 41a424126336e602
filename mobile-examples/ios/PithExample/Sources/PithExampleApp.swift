import SwiftUI

@main
struct PithExampleApp: App {
    @StateObject private var model = AskModel()

    var body: some Scene {
        WindowGroup {
            ContentView(model: model)
                .task { await model.start() }
        }
    }
}
