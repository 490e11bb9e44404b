// What the Swift tests share: temporary folders, the fixtures, a session per phone, and the
// platform: the real weldguard-server on loopback (started with Foundation's Process, stopped at
// the end) and the lead's bureau desk `wg-shell-world` for the admin side. WG_BIN_DIR names the
// folder holding both binaries (scripts/swift.sh sets it).
import Foundation
import Testing

@testable import WeldGuard

enum Fixtures {
    static let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func data(_ name: String) throws -> Data {
        try Data(contentsOf: folder.appendingPathComponent(name))
    }

    static func text(_ name: String) throws -> String {
        try String(decoding: data(name), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A fresh temporary folder, removed when the value is dropped.
final class TempDir: @unchecked Sendable {
    let url: URL

    init(_ prefix: String) throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("wg-swift-\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    deinit { try? FileManager.default.removeItem(at: url) }
}

/// One phone: its profile folder, its key and its session.
struct Phone {
    let dir: TempDir
    let key: SoftwareKey
    let clock: ManualClock
    let session: WeldGuardSession

    init(_ name: String, language: AppLanguage = .zh, present: Bool = false) throws {
        dir = try TempDir(name)
        key = try SoftwareKey(present: present)
        clock = ManualClock()
        session = try WeldGuardSession(
            profilePath: dir.path("profile.db"), language: language, clock: clock, key: key)
    }
}

enum TestFailure: Error, CustomStringConvertible {
    case setup(String)
    var description: String {
        switch self {
        case let .setup(what): return what
        }
    }
}

/// `key=value` lines (split at the first `=`), as wg-shell-world prints them.
func properties(_ text: String) -> [String: String] {
    var out: [String: String] = [:]
    for line in text.split(separator: "\n") {
        guard let eq = line.firstIndex(of: "=") else { continue }
        out[String(line[..<eq])] = String(line[line.index(after: eq)...])
    }
    return out
}

/// The folder holding weldguard-server and wg-shell-world.
func binDir() throws -> URL {
    guard let dir = ProcessInfo.processInfo.environment["WG_BIN_DIR"], !dir.isEmpty else {
        throw TestFailure.setup("WG_BIN_DIR is not set (scripts/swift.sh test sets it)")
    }
    return URL(fileURLWithPath: dir)
}

/// Run a program to its end; its stdout, or a failure with its stderr.
func runTool(_ tool: URL, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = tool
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw TestFailure.setup(
            "\(tool.lastPathComponent) \(arguments.joined(separator: " ")) failed "
                + "(\(process.terminationStatus)): \(String(decoding: stderr, as: UTF8.self))")
    }
    return String(decoding: stdout, as: UTF8.self)
}

/// The real server on loopback over a temporary data folder.
final class ServerProcess: @unchecked Sendable {
    let dataDir: TempDir
    let adminToken = "swift-shell-admin-token-0123456789"
    private(set) var url = ""
    private var process: Process?

    init() throws {
        dataDir = try TempDir("server")
        try start(listen: "127.0.0.1:0")
    }

    /// Start on `listen` and wait for the `listening on http://ADDR` line.
    func start(listen: String) throws {
        let process = Process()
        process.executableURL = try binDir().appendingPathComponent("weldguard-server")
        process.arguments = [
            "--data-dir", dataDir.path("data"), "--listen", listen, "--admin-token", adminToken,
        ]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        var seen = Data()
        while true {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty {
                throw TestFailure.setup(
                    "the server ended before listening: \(String(decoding: seen, as: UTF8.self))")
            }
            seen.append(chunk)
            let text = String(decoding: seen, as: UTF8.self)
            if let range = text.range(of: "listening on ") {
                let rest = text[range.upperBound...]
                if let end = rest.firstIndex(of: "\n") {
                    url = String(rest[..<end])
                    // Keep draining what else it prints, so it never blocks on a full pipe.
                    out.fileHandleForReading.readabilityHandler = { _ = $0.availableData }
                    break
                }
            }
        }
    }

    /// Stop the server (it can be started again on the same address and data).
    func stop() {
        if let p = process, p.isRunning {
            p.terminate()
            p.waitUntilExit()
        }
        process = nil
    }

    /// Start again where it listened before.
    func restart() throws {
        let address = url.replacingOccurrences(of: "http://", with: "")
        try start(listen: address)
    }

    deinit { stop() }
}

/// The server plus the bureau's desk: the registry, codes, labels and enrolment codes.
final class World: @unchecked Sendable {
    let server: ServerProcess
    let out: TempDir
    let values: [String: String]

    init() throws {
        server = try ServerProcess()
        out = try TempDir("world")
        values = properties(
            try runTool(
                try binDir().appendingPathComponent("wg-shell-world"),
                [
                    "setup", "--server", server.url, "--admin-token", server.adminToken, "--out",
                    out.url.path,
                ]))
    }

    /// A value of world.properties (a marker that fails every comparison when missing).
    subscript(_ key: String) -> String {
        values[key] ?? "<world.properties lacks \(key)>"
    }

    /// A fresh enrolment code for SLOT (welder, inspector, applicant, fire_watch, supervisor,
    /// approver).
    func enrolCode(_ slot: String) throws -> String {
        let out = properties(
            try runTool(
                try binDir().appendingPathComponent("wg-shell-world"),
                [
                    "enrol-code", "--server", server.url, "--admin-token", server.adminToken,
                    "--slot", slot,
                ]))
        guard let code = out["code"] else { throw TestFailure.setup("enrol-code printed no code") }
        return code
    }

    /// The idempotency keys of the records of `kind` the platform holds.
    func held(_ kind: String) throws -> [String] {
        let out = properties(
            try runTool(
                try binDir().appendingPathComponent("wg-shell-world"),
                [
                    "held", "--server", server.url, "--admin-token", server.adminToken, "--kind",
                    kind,
                ]))
        let count = Int(out["count"] ?? "") ?? -1
        guard count >= 0 else { throw TestFailure.setup("held printed no count") }
        return (0..<count).compactMap { out["record.\($0).key"] }
    }

    /// What the platform admitted of a permit (`steps`, `state`, `signers`).
    func permit(_ id: String) throws -> [String: String] {
        properties(
            try runTool(
                try binDir().appendingPathComponent("wg-shell-world"),
                [
                    "permit", "--server", server.url, "--admin-token", server.adminToken, "--id", id,
                ]))
    }

    /// Enrol `phone` through the enrolment view model with the slot's code.
    @MainActor
    func enrol(_ phone: Phone, slot: String) async throws -> EnrolmentViewModel {
        let vm = EnrolmentViewModel(session: phone.session)
        await vm.enrol(
            serverUrl: server.url, code: self["enrol.\(slot).code"],
            deviceName: "\(slot) 的 iPhone")
        return vm
    }
}
