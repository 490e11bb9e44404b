// The SwiftUI screens: each renders its view model's state and sends its events; no rule is
// decided here (texts of reasons, deadlines and errors come from the core in the app language;
// the screens' own labels come from the String Catalog, zh-Hans and en).
#if canImport(SwiftUI)
    import SwiftUI
    import WeldGuard

    /// A label from the String Catalog of this module.
    func L(_ key: String.LocalizationValue) -> String {
        String(localized: key, bundle: .module)
    }

    /// An error as every screen shows it.
    public struct UiErrorView: View {
        let error: UiError
        public init(_ error: UiError) { self.error = error }
        public var body: some View {
            VStack(alignment: .leading, spacing: 4) {
                Text(error.message).foregroundStyle(.red)
                Text(error.code).font(.caption).foregroundStyle(.secondary)
                if error.retryable {
                    Text(L("error.retryable")).font(.caption)
                }
            }
        }
    }

    public struct EnrolmentScreen: View {
        let model: EnrolmentViewModel
        @State private var server = ""
        @State private var code = ""
        public init(model: EnrolmentViewModel) { self.model = model }
        public var body: some View {
            Form {
                switch model.state.phase {
                case .idle, .failed:
                    TextField(L("enrol.server"), text: $server)
                    TextField(L("enrol.code"), text: $code)
                    Button(L("enrol.action")) {
                        Task { await model.enrol(serverUrl: server, code: code, deviceName: "iPhone") }
                    }
                    if case let .failed(error) = model.state.phase { UiErrorView(error) }
                case .enrolling:
                    ProgressView(L("enrol.enrolling"))
                case let .enrolled(name, id, _):
                    Text(L("enrol.done"))
                    Text("\(name) · \(id)")
                }
            }
            .navigationTitle(L("enrol.title"))
        }
    }

    public struct SyncStatusScreen: View {
        let model: SyncStatusViewModel
        public init(model: SyncStatusViewModel) { self.model = model }
        public var body: some View {
            Form {
                Text(L("sync.pending")) + Text(" \(model.state.pendingRecords)")
                switch model.state.phase {
                case .idle:
                    Button(L("sync.action")) { Task { await model.sync() } }
                case let .syncing(_, done, total):
                    if let total {
                        ProgressView(value: Double(done), total: Double(max(total, 1)))
                    } else {
                        ProgressView()
                    }
                    Button(L("sync.cancel")) { model.cancel() }
                case let .synced(summary):
                    Text(L("sync.done")) + Text(" \(summary.applied)/\(summary.pushed)")
                    Button(L("sync.action")) { Task { await model.sync() } }
                case let .failed(error):
                    UiErrorView(error)
                    Button(L("sync.action")) { Task { await model.sync() } }
                }
            }
            .navigationTitle(L("sync.title"))
            .task { await model.refresh() }
        }
    }

    public struct ScanToStartScreen: View {
        let model: ScanToStartViewModel
        public init(model: ScanToStartViewModel) { self.model = model }
        public var body: some View {
            VStack(spacing: 12) {
                switch model.state.step {
                case .scanMachine: Text(L("scan.machine"))
                case .scanWelder: Text(L("scan.welder"))
                case .deciding: ProgressView()
                case .decided: EmptyView()
                }
                if let machine = model.state.machineId { Text(machine).font(.headline) }
                if let name = model.state.welderName { Text(name) }
                if let decision = model.state.decision {
                    Text(decision.allowed ? L("scan.allowed") : L("scan.refused"))
                        .font(.largeTitle)
                        .foregroundStyle(decision.allowed ? .green : .red)
                    ForEach(decision.reasons, id: \.self) { Text($0) }
                    Button(L("scan.again")) { model.reset() }
                }
                if let error = model.state.error { UiErrorView(error) }
            }
            .padding()
            .navigationTitle(L("scan.title"))
        }
    }

    public struct InspectorCheckScreen: View {
        let model: InspectorCheckViewModel
        let siteId: String
        public init(model: InspectorCheckViewModel, siteId: String) {
            self.model = model
            self.siteId = siteId
        }
        public var body: some View {
            Form {
                switch model.state.phase {
                case .scanning: Text(L("inspect.scan"))
                case .checking, .recording: ProgressView()
                case let .checked(check):
                    if let licence = check.licence {
                        Text(licence.name).font(.headline)
                        Text(licence.certificateNo)
                        Text(licence.idNumberMasked)
                        Text(L("inspect.expires")) + Text(" \(licence.expiresOn)")
                    }
                    ForEach(check.reasons, id: \.code) { Text($0.text) }
                    Text(L("inspect.findings")) + Text(" \(model.state.findings.count)")
                    Button(L("inspect.record")) { Task { await model.record(siteId: siteId) } }
                case let .recorded(id):
                    Text(L("inspect.recorded"))
                    Text(id).font(.caption)
                    Button(L("inspect.next")) { model.reset() }
                case let .failed(error):
                    UiErrorView(error)
                    Button(L("inspect.next")) { model.reset() }
                }
            }
            .navigationTitle(L("inspect.title"))
        }
    }

    public struct PermitWalkthroughScreen: View {
        let model: PermitWalkthroughViewModel
        public init(model: PermitWalkthroughViewModel) { self.model = model }
        public var body: some View {
            List {
                if let permit = model.state.permit {
                    Section {
                        Text(permit.summary.work).font(.headline)
                        Text(permit.stateName.text)
                        ForEach(permit.deadlines, id: \.at) { Text($0.text.text) }
                    }
                    if !model.state.blockedBy.isEmpty {
                        Section(L("permit.blocked")) {
                            ForEach(model.state.blockedBy, id: \.code) { finding in
                                Text(finding.text).foregroundStyle(.red)
                            }
                        }
                    }
                }
                Section(L("permit.checklist")) {
                    ForEach(model.state.checklist, id: \.id) { item in
                        let answered = model.state.answers.contains { $0.itemId == item.id }
                        Label(item.text.text, systemImage: answered ? "checkmark.circle" : "circle")
                    }
                }
                if !model.state.dues.isEmpty {
                    Section(L("permit.due")) {
                        ForEach(model.state.dues, id: \.dueAt) { Text($0.text) }
                    }
                }
                if let error = model.state.error { UiErrorView(error) }
            }
            .navigationTitle(L("permit.title"))
            .task { await model.due() }
        }
    }
#endif
