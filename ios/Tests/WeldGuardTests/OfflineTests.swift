// The layer and the view models without a platform: errors arrive as Swift errors and become the
// UiError a screen shows (in the app language), scanning a label photo, the deadline stream, the
// software signer's signatures as the core checks them, and a sync that has nowhere to go.
import Foundation
import Testing

@testable import WeldGuard

@Suite struct OfflineTests {
    @Test func aDamagedProfileIsAStorageErrorInBothLanguages() throws {
        let dir = try TempDir("damaged")
        let path = dir.path("profile.db")
        try Data("this is not a database, just text long enough to be read".utf8)
            .write(to: URL(fileURLWithPath: path))
        let key = try SoftwareKey()
        var thrown: (any Error)?
        do {
            _ = try WeldGuardSession(profilePath: path, key: key)
        } catch {
            thrown = error
        }
        let error = try #require(thrown)
        guard case WeldGuardError.Storage = error else {
            Issue.record("expected WeldGuardError.Storage, got \(error)")
            return
        }
        let zh = UiError.from(error, language: .zh)
        let en = UiError.from(error, language: .en)
        #expect(zh.kind == .storage && en.kind == .storage)
        #expect(zh.code == en.code && !zh.code.isEmpty)
        #expect(zh.message != en.message)
        #expect(!zh.retryable)
        // The file is left as it was.
        #expect(try String(contentsOfFile: path, encoding: .utf8).hasPrefix("this is not"))
    }

    @Test @MainActor func aPhotoThatIsNotAnImageShowsTheCoresInputError() async throws {
        let phone = try Phone("bad-photo", language: .en)
        let vm = ScanToStartViewModel(session: phone.session, siteId: "site-1")
        await vm.onImage(Data("not a png".utf8))
        let error = try #require(vm.state.error)
        #expect(error.kind == .invalidInput)
        #expect(error.code.hasPrefix("scan."))
        #expect(vm.state.step == .scanMachine)
    }

    @Test @MainActor func aFrameWhoseStrideIsTooNarrowIsRefused() async throws {
        let phone = try Phone("bad-frame")
        let vm = InspectorCheckViewModel(session: phone.session)
        await vm.onFrame(luma: Data(count: 100), width: 20, height: 5, rowStride: 10)
        guard case let .failed(error) = vm.state.phase else {
            Issue.record("expected a failure, got \(vm.state.phase)")
            return
        }
        #expect(error.kind == .invalidInput && error.code.hasPrefix("scan."))
    }

    @Test @MainActor func theMachineLabelPhotoIsReadAndItsMachineShown() async throws {
        let phone = try Phone("label")
        try await phone.session.call { device, _, now in
            try device.setTrust(trustJson: try Fixtures.text("trust.json"), nowUnix: now)
        }
        let vm = ScanToStartViewModel(session: phone.session, siteId: "site-1")
        await vm.onImage(try Fixtures.data("machine-label.png"))
        #expect(vm.state.error == nil)
        #expect(vm.state.step == .scanWelder)
        #expect(vm.state.machineId == "370983-DH-2024-000123")
        vm.reset()
        #expect(vm.state == ScanToStartState())
    }

    @Test @MainActor func aBlankPaddedFrameReadsNothingAndChangesNothing() async throws {
        // Rows padded to a stride wider than the width, as a camera hands them over.
        let phone = try Phone("frame")
        let vm = ScanToStartViewModel(session: phone.session, siteId: "site-1")
        let width: UInt32 = 64
        let height: UInt32 = 48
        let stride: UInt32 = 80
        await vm.onFrame(
            luma: Data(repeating: 200, count: Int(stride * height)), width: width, height: height,
            rowStride: stride)
        #expect(vm.state == ScanToStartState())
    }

    @Test @MainActor func syncBeforeEnrolmentFailsWithTheShellsError() async throws {
        let phone = try Phone("not-enrolled", language: .en)
        let vm = SyncStatusViewModel(session: phone.session)
        await vm.sync()
        guard case let .failed(error) = vm.state.phase else {
            Issue.record("expected a failure, got \(vm.state.phase)")
            return
        }
        #expect(error.code == "shell.not_enrolled")
        #expect(error.message.contains("enrol"))
        #expect(vm.state.pendingRecords == 0)
    }

    @Test @MainActor func enrolmentWithAnUnreachablePlatformIsARetryableSyncError() async throws {
        // Port 9 (discard) on loopback: nothing listens there; the core retries, then gives up.
        let phone = try Phone("unreachable", language: .zh)
        let vm = EnrolmentViewModel(session: phone.session)
        await vm.enrol(serverUrl: "http://127.0.0.1:9", code: "WGE-0000", deviceName: "测试机")
        guard case let .failed(error) = vm.state.phase else {
            Issue.record("expected a failure, got \(vm.state.phase)")
            return
        }
        #expect(error.kind == .sync)
        #expect(error.retryable)
        #expect(phone.session.enrolment == nil)
    }

    @Test func theDeadlineStreamTicksOnAFreshProfileAndStopsWhenLeft() async throws {
        let phone = try Phone("deadlines")
        var ticks = 0
        for await items in phone.session.deadlines(every: .milliseconds(10)) {
            #expect(items.isEmpty)
            ticks += 1
            if ticks == 3 { break }
        }
        #expect(ticks == 3)
    }

    @Test func theSoftwareKeyHasTheShapesTheCoreExpects() throws {
        // (The core verifies its signatures in the permit flow: permitVerify and the platform.)
        let key = try SoftwareKey()
        let pub = key.publicKey()
        #expect(pub.count == 33)
        #expect(pub.first == 2 || pub.first == 3)
        let signature = try key.sign(message: Data("hello".utf8))
        #expect(signature.count == 64)
    }

    @Test func everyErrorMapsOnce() {
        let sync = WeldGuardError.Sync(
            code: "sync.network", messageZh: "网络不通", messageEn: "network down", retryable: true)
        #expect(
            UiError.from(sync, language: .en)
                == UiError(code: "sync.network", kind: .sync, message: "network down", retryable: true))
        #expect(UiError.from(sync, language: .zh).message == "网络不通")
        let signing = WeldGuardError.Signing(code: "signer.failed", messageZh: "签名失败", messageEn: "no")
        #expect(UiError.from(signing, language: .zh).kind == .signing)
        #expect(UiError.from(CancellationError(), language: .en).code == "shell.cancelled")
    }
}
