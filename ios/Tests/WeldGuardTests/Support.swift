// What the Swift tests share: temporary folders, the fixtures, a session per phone, and the
// platform: the real weldguard-server on loopback (spawned with posix_spawn, stopped at
// the end) and the lead's bureau desk `wg-shell-world` for the admin side. WG_BIN_DIR names the
// folder holding both binaries (scripts/swift.sh sets it).
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

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

/// A child process started with posix_spawn and waited for with waitpid. (Foundation's Process
/// never saw its children end in this Linux toolchain — `isRunning` stayed true and
/// `waitUntilExit` hung — so the tests spawn and reap their programs themselves.)
final class Child: @unchecked Sendable {
    let pid: pid_t
    /// The read ends of its stdout and stderr (stderr: `nil` when sent to /dev/null).
    let stdout: FileHandle
    let stderr: FileHandle?
    private var status: Int32?

    init(_ program: URL, _ arguments: [String], captureStderr: Bool) throws {
        var out: [Int32] = [0, 0]
        var err: [Int32] = [0, 0]
        try Self.pipe(&out)
        if captureStderr {
            try Self.pipe(&err)
        } else {
            err = [-1, open("/dev/null", O_WRONLY | O_CLOEXEC)]
        }
        #if os(Linux)
            var actions = posix_spawn_file_actions_t()
            let environment = environ
        #else
            var actions: posix_spawn_file_actions_t? = nil
            let environment = _NSGetEnviron().pointee
        #endif
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_adddup2(&actions, err[1], 2)
        let argv: [UnsafeMutablePointer<CChar>?] =
            ([program.path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, program.path, &actions, nil, argv, environment)
        close(out[1])
        close(err[1])
        guard rc == 0 else {
            close(out[0])
            if err[0] >= 0 { close(err[0]) }
            throw TestFailure.setup("cannot start \(program.path): error \(rc)")
        }
        self.pid = pid
        stdout = FileHandle(fileDescriptor: out[0], closeOnDealloc: true)
        stderr = err[0] >= 0 ? FileHandle(fileDescriptor: err[0], closeOnDealloc: true) : nil
    }

    /// A pipe whose ends are closed in other children (the spawned one gets its end by dup2).
    private static func pipe(_ fds: inout [Int32]) throws {
        guard systemPipe(&fds) == 0 else { throw TestFailure.setup("pipe failed") }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
    }

    /// Wait for it to end; its exit status (128 + N when killed by signal N).
    @discardableResult
    func wait() -> Int32 {
        if let status { return status }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        let code = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        status = code
        return code
    }

    /// Stop it (SIGKILL, as a crash or a pulled plug would: the server's SIGTERM shutdown waits
    /// for its connections) and wait.
    func kill() {
        guard status == nil else { return }
        _ = systemKill(pid, SIGKILL)
        wait()
    }
}

/// pipe(2) and kill(2) by their module (the names are taken by methods of `Child`).
private func systemPipe(_ fds: UnsafeMutablePointer<Int32>) -> Int32 {
    #if canImport(Glibc)
        return Glibc.pipe(fds)
    #else
        return Darwin.pipe(fds)
    #endif
}

private func systemKill(_ pid: pid_t, _ signal: Int32) -> Int32 {
    #if canImport(Glibc)
        return Glibc.kill(pid, signal)
    #else
        return Darwin.kill(pid, signal)
    #endif
}

/// Run a program to its end, off the caller's thread; its stdout, or a failure with its stderr.
func runTool(_ tool: URL, _ arguments: [String]) async throws -> String {
    try await Task.detached {
        let child = try Child(tool, arguments, captureStderr: true)
        // The error output is small; it is read after the standard output ends.
        let stdout = child.stdout.readDataToEndOfFile()
        let stderr = child.stderr?.readDataToEndOfFile() ?? Data()
        let status = child.wait()
        guard status == 0 else {
            throw TestFailure.setup(
                "\(tool.lastPathComponent) \(arguments.joined(separator: " ")) failed "
                    + "(\(status)): \(String(decoding: stderr, as: UTF8.self))")
        }
        return String(decoding: stdout, as: UTF8.self)
    }.value
}

/// The real server on loopback over a temporary data folder.
final class ServerProcess: @unchecked Sendable {
    let dataDir: TempDir
    let adminToken = "swift-shell-admin-token-0123456789"
    private(set) var url = ""
    private var process: Child?

    private init() throws {
        dataDir = try TempDir("server")
    }

    /// A server on a free loopback port, started off the caller's thread.
    static func start() async throws -> ServerProcess {
        try await Task.detached {
            let server = try ServerProcess()
            try server.start(listen: "127.0.0.1:0")
            return server
        }.value
    }

    /// Start on `listen` and wait for the `listening on http://ADDR` line (a blocking read: call
    /// it off the main actor).
    private func start(listen: String) throws {
        let process = try Child(
            try binDir().appendingPathComponent("weldguard-server"),
            [
                "--data-dir", dataDir.path("data"), "--listen", listen, "--admin-token",
                adminToken,
            ], captureStderr: false)
        self.process = process
        let out = process.stdout
        var seen = Data()
        while true {
            let chunk = out.availableData
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
                    Thread.detachNewThread { _ = out.readDataToEndOfFile() }
                    break
                }
            }
        }
    }

    /// Stop the server (it can be started again on the same address and data).
    func stop() {
        process?.kill()
        process = nil
    }

    /// Start again where it listened before.
    func restart() async throws {
        let address = url.replacingOccurrences(of: "http://", with: "")
        try await Task.detached { try self.start(listen: address) }.value
    }

    deinit { stop() }
}

/// The server plus the bureau's desk: the registry, codes, labels and enrolment codes.
final class World: @unchecked Sendable {
    let server: ServerProcess
    let out: TempDir
    let values: [String: String]

    private init(server: ServerProcess, out: TempDir, values: [String: String]) {
        self.server = server
        self.out = out
        self.values = values
    }

    /// A server with the bureau's world set up on it.
    static func make() async throws -> World {
        let server = try await ServerProcess.start()
        let out = try TempDir("world")
        let values = properties(
            try await runTool(
                try binDir().appendingPathComponent("wg-shell-world"),
                [
                    "setup", "--server", server.url, "--admin-token", server.adminToken, "--out",
                    out.url.path,
                ]))
        return World(server: server, out: out, values: values)
    }

    /// A value of world.properties (a marker that fails every comparison when missing).
    subscript(_ key: String) -> String {
        values[key] ?? "<world.properties lacks \(key)>"
    }

    /// A fresh enrolment code for SLOT (welder, inspector, applicant, fire_watch, supervisor,
    /// approver).
    func enrolCode(_ slot: String) async throws -> String {
        let out = properties(
            try await runTool(
                try binDir().appendingPathComponent("wg-shell-world"),
                [
                    "enrol-code", "--server", server.url, "--admin-token", server.adminToken,
                    "--slot", slot,
                ]))
        guard let code = out["code"] else { throw TestFailure.setup("enrol-code printed no code") }
        return code
    }

    /// The idempotency keys of the records of `kind` the platform holds.
    func held(_ kind: String) async throws -> [String] {
        let out = properties(
            try await runTool(
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
    func permit(_ id: String) async throws -> [String: String] {
        properties(
            try await runTool(
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
