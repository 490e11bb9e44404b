// The five flows of shells.md through the view models, against the real weldguard-server on
// loopback with the bureau's desk (wg-shell-world) for the admin side, as the Kotlin shell's tests
// run them: (a) the welder scans to start, allowed, and refused for an expired licence in zh and
// en; (b) the inspector records an inspection the platform holds once; (c) the supervisor walks a
// permit draft→close with the people's own keys, a failed "must" item blocking it, the fire-watch
// deadline, the whole signed chain on the platform; (d) offline records sync later, nothing lost or
// duplicated; (e) errors arrive as Swift errors and the view models show UiError.
import Foundation
import Testing

@testable import WeldGuard

/// True when `text` holds a CJK ideograph.
func hasChinese(_ text: String) -> Bool {
    text.unicodeScalars.contains { (0x4E00...0x9FFF).contains($0.value) }
}

@MainActor
func synced(_ vm: SyncStatusViewModel) async throws -> SyncedSummary {
    await vm.sync()
    guard case let .synced(summary) = vm.state.phase else {
        throw TestFailure.setup("the sync did not finish: \(vm.state.phase)")
    }
    return summary
}

@MainActor
func enrolled(_ world: World, _ phone: Phone, _ slot: String) async throws {
    let vm = try await world.enrol(phone, slot: slot)
    guard case let .enrolled(_, personId, _) = vm.state.phase else {
        throw TestFailure.setup("\(slot) did not enrol: \(vm.state.phase)")
    }
    #expect(personId == world["enrol.\(slot).person_id"])
}

@Suite(.serialized) struct FlowTests {
    // MARK: (a) the welder

    @Test @MainActor func aWelderScansToStartAndAnExpiredLicenceIsRefusedInBothLanguages()
        async throws
    {
        let world = try await World.make()
        let phone = try Phone("welder", language: .zh)
        let enrolment = try await world.enrol(phone, slot: "welder")
        guard case let .enrolled(name, _, role) = enrolment.state.phase else {
            Issue.record("not enrolled: \(enrolment.state.phase)")
            return
        }
        #expect(name == world["welder.name"])
        #expect(role == .welder)
        let sync = SyncStatusViewModel(session: phone.session)
        #expect(try await synced(sync).rejected == 0)

        let scan = ScanToStartViewModel(session: phone.session, siteId: world["site_id"])
        await scan.onImage(path: world["image.machine_label"])
        #expect(scan.state.step == .scanWelder)
        #expect(scan.state.machineId == world["machine_id"])
        await scan.onImage(path: world["image.credential"])
        #expect(scan.state.step == .decided)
        let allowed = try #require(scan.state.decision, "\(String(describing: scan.state.error))")
        #expect(allowed.allowed, "\(allowed.reasons)")
        #expect(allowed.sessionId != nil)

        var texts: [AppLanguage: String] = [:]
        for language in [AppLanguage.zh, .en] {
            phone.session.language = language
            scan.reset()
            await scan.onImage(path: world["image.machine_label"])
            await scan.onImage(path: world["image.expired_credential"])
            let refused = try #require(scan.state.decision)
            #expect(!refused.allowed)
            let at = try #require(
                refused.reasonCodes.firstIndex { $0.contains("expired") }, "\(refused.reasonCodes)")
            texts[language] = refused.reasons[at]
        }
        #expect(hasChinese(texts[.zh] ?? ""))
        #expect(!hasChinese(texts[.en] ?? "中"))

        let pushed = try await synced(sync)
        #expect((pushed.pushed, pushed.applied, pushed.rejected) == (3, 3, 0))
        #expect(try await world.held("work_session").count == 3)
        #expect(sync.state.pendingRecords == 0)
    }

    // MARK: (b) the inspector

    @Test @MainActor func anInspectorRecordsAnInspectionThePlatformHoldsOnce() async throws {
        let world = try await World.make()
        let phone = try Phone("inspector")
        try await enrolled(world, phone, "inspector")
        let sync = SyncStatusViewModel(session: phone.session)
        _ = try await synced(sync)

        let check = InspectorCheckViewModel(session: phone.session)
        await check.onImage(try Data(contentsOf: URL(fileURLWithPath: world["image.credential"])))
        guard case let .checked(seen) = check.state.phase else {
            Issue.record("not checked: \(check.state.phase)")
            return
        }
        #expect(seen.codeVerified)
        #expect(seen.state == .valid)
        let licence = try #require(seen.licence)
        #expect(licence.name == world["welder.name"])
        #expect(licence.certificateNo == world["welder.certificate_no"])
        #expect(!licence.idNumberMasked.contains(world["welder.id_number"]))

        let item = try permitChecklist(lang: .zh).items[0].id
        check.addFinding(itemId: item, outcome: .notCompliant, note: "动火点周边有可燃物")
        #expect(check.state.findings.count == 1)
        await check.record(siteId: world["site_id"], notes: "现场整改")
        guard case let .recorded(inspectionId) = check.state.phase else {
            Issue.record("not recorded: \(check.state.phase)")
            return
        }
        #expect(sync.state.pendingRecords == 0)
        await sync.refresh()
        #expect(sync.state.pendingRecords == 1)

        let first = try await synced(sync)
        #expect((first.pushed, first.applied, first.rejected) == (1, 1, 0))
        let again = try await synced(sync)
        #expect(again.pushed == 0)
        #expect(try await world.held("inspection") == [inspectionId])

        // The expired welder's licence, as the registry keeps it.
        check.reset()
        await check.onText(world["code.expired_credential"])
        guard case let .checked(expired) = check.state.phase else {
            Issue.record("not checked: \(check.state.phase)")
            return
        }
        #expect(expired.state == .expired)
    }

    // MARK: (c) the supervisor's permit

    @Test @MainActor func aSupervisorWalksAPermitFromDraftToCloseAndTheSignedChainReachesThePlatform()
        async throws
    {
        let world = try await World.make()
        let applicant = try Phone("applicant")
        let fireWatch = try Phone("fire-watch")
        let approver = try Phone("approver", present: true)
        let supervisor = try Phone("supervisor")
        for (phone, slot) in [
            (applicant, "applicant"), (fireWatch, "fire_watch"), (approver, "approver"),
            (supervisor, "supervisor"),
        ] {
            try await enrolled(world, phone, slot)
        }
        let sync = SyncStatusViewModel(session: supervisor.session)
        _ = try await synced(sync)

        let people = try PermitPeople(world)
        let vm = PermitWalkthroughViewModel(session: supervisor.session)
        #expect(!vm.state.checklist.isEmpty)
        let clock = supervisor.clock

        clock.set(t(6, 40))
        await vm.draft(try people.draft())
        #expect(vm.state.permit?.state == .draft, "\(String(describing: vm.state.error))")
        clock.set(t(7, 0))
        await vm.submit(by: people.applicant, signer: applicant.key)
        #expect(vm.state.permit?.state == .submitted, "\(String(describing: vm.state.error))")

        // Every prohibition and must answered, but the first must without its evidence.
        people.answer(vm, sections: [.prohibition, .must], gasAt: t(7, 15))
        // (must.01 also carries the machine distance; a later must item fails on its own.)
        let must = try #require(
            vm.state.checklist.first { $0.section == .must && $0.id != "must.01" && !$0.evidence.isEmpty })
        vm.answer(itemId: must.id, evidence: [])
        clock.set(t(7, 18))
        await vm.preview()
        #expect(vm.state.error == nil)
        #expect(!vm.state.blockedBy.isEmpty)
        // The state names the item as data (the finding's itemId), for the screen to point at it.
        #expect(
            vm.state.blockedBy.contains { $0.itemId == must.id },
            "\(must.id): \(vm.state.blockedBy.map { "\($0.code) \($0.itemId ?? "-") \($0.text)" })")
        #expect(vm.state.permit?.action(.approve)?.allowed == false)

        // Answered in full: the site check, then the approval (the person's presence needed).
        people.answer(vm, sections: [.must], gasAt: t(7, 15))
        clock.set(t(7, 20))
        await vm.siteCheck(by: people.supervisor, signer: supervisor.key, location: people.site)
        #expect(vm.state.error == nil, "\(String(describing: vm.state.error))")
        #expect(vm.state.permit?.action(.approve)?.allowed == true)
        #expect(vm.state.blockedBy.isEmpty)

        approver.key.present = false
        clock.set(t(7, 40))
        await vm.approve(by: people.approver, signer: approver.key, location: people.site)
        #expect(vm.state.error?.kind == .signing, "\(String(describing: vm.state.error))")
        #expect(vm.state.permit?.state == .checked)
        approver.key.present = true
        await vm.approve(by: people.approver, signer: approver.key, location: people.site)
        #expect(vm.state.permit?.state == .approved, "\(String(describing: vm.state.error))")

        clock.set(t(8, 55))
        await vm.recordGas(
            PermitGasInput(
                lelCentiPct: 500, concentrationCentiPct: 10, point: "动火点", analyst: "赵六",
                takenAt: nil))
        clock.set(t(9, 0))
        await vm.start()
        #expect(vm.state.permit?.state == .active, "\(String(describing: vm.state.error))")
        clock.set(t(12, 0))
        await vm.complete()
        #expect(vm.state.permit?.state == .completed)
        #expect(vm.state.permit?.action(.close)?.allowed == false, "the fire watch is on")

        // The fire-watch deadline: in the due list and from the timer stream.
        clock.set(t(12, 5))
        await vm.due()
        let watch = try #require(vm.state.dues.first { $0.kind == .fireWatch })
        #expect(watch.permitId == people.permitId)
        #expect(watch.dueAt > t(12, 5) && !watch.overdue)
        var fired: DueItem?
        for await items in supervisor.session.deadlines(every: .milliseconds(10)) {
            fired = items.first { $0.kind == .fireWatch }
            if fired != nil { break }
        }
        #expect(fired?.dueAt == watch.dueAt)

        people.answer(vm, sections: [.postWork], gasAt: watch.dueAt)
        clock.set(watch.dueAt)
        await vm.close(by: people.fireWatch, signer: fireWatch.key, location: people.site)
        #expect(vm.state.permit?.state == .closed, "\(String(describing: vm.state.error))")
        #expect(vm.state.permit?.signatures.count == 4)
        let verified = try await supervisor.session.call { device, lang, _ in
            try device.permitVerify(permitId: people.permitId, lang: lang)
        }
        #expect(verified.valid, "\(String(describing: verified.reason))")
        let steps = try await supervisor.session.call { device, lang, now in
            try device.permitShow(permitId: people.permitId, nowUnix: now, lang: lang).steps.count
        }

        clock.set(nil)
        let pushed = try await synced(sync)
        #expect(
            (pushed.pushed, pushed.applied, pushed.rejected) == (UInt64(steps), UInt64(steps), 0))
        #expect(try await world.held("permit_step").count == steps)
        let admitted = try await world.permit(people.permitId)
        #expect(admitted["state"] == "closed")
        #expect(admitted["steps"] == String(steps))
        let signers = admitted["signers"] ?? ""
        for id in ["S-001", "S-002", "S-003", "S-004"] {
            #expect(signers.contains(id), "\(signers)")
        }
    }

    // MARK: (d) offline

    @Test @MainActor func recordsMadeOfflineReachThePlatformLaterOnceEach() async throws {
        let world = try await World.make()
        let phone = try Phone("offline", language: .en)
        try await enrolled(world, phone, "welder")
        let sync = SyncStatusViewModel(session: phone.session)
        _ = try await synced(sync)

        world.server.stop()
        let scan = ScanToStartViewModel(session: phone.session, siteId: world["site_id"])
        for credential in ["image.credential", "image.expired_credential"] {
            scan.reset()
            await scan.onImage(path: world["image.machine_label"])
            await scan.onImage(path: world[credential])
            #expect(scan.state.step == .decided, "\(String(describing: scan.state.error))")
        }
        await sync.sync()
        guard case let .failed(error) = sync.state.phase else {
            Issue.record("the sync should fail while the platform is down: \(sync.state.phase)")
            return
        }
        #expect(error.kind == .sync && error.retryable, "\(error)")
        #expect(sync.state.pendingRecords == 2)

        try await world.server.restart()
        let pushed = try await synced(sync)
        #expect((pushed.pushed, pushed.applied, pushed.rejected) == (2, 2, 0))
        #expect(sync.state.pendingRecords == 0)
        let again = try await synced(sync)
        #expect(again.pushed == 0)
        #expect(try await world.held("work_session").count == 2)
    }

    // MARK: (e) errors

    @Test @MainActor func errorsArriveAsSwiftErrorsAndTheViewModelsShowThem() async throws {
        let world = try await World.make()
        let first = try Phone("first")
        try await enrolled(world, first, "inspector")

        // Leaving the sync's progress stream early cancels its SyncTask.
        let task = SyncTask()
        var sawProgress = false
        for await event in first.session.sync(task: task) {
            if case .progress = event {
                sawProgress = true
                break
            }
        }
        #expect(sawProgress)
        #expect(task.isCancelled())

        // The same one-time code again: the platform refuses; a typed Swift error.
        let second = try Phone("second", language: .en)
        let code = world["enrol.inspector.code"]
        var thrown: (any Error)?
        do {
            _ = try await second.session.enrol(serverUrl: world.server.url, code: code, deviceName: "x")
        } catch {
            thrown = error
        }
        guard case let .Sync(errorCode, zh, en, retryable)? = thrown as? WeldGuardError else {
            Issue.record("expected WeldGuardError.Sync, got \(String(describing: thrown))")
            return
        }
        #expect(!retryable)
        #expect(zh != en)
        let vm = EnrolmentViewModel(session: second.session)
        await vm.enrol(serverUrl: world.server.url, code: code, deviceName: "x")
        #expect(vm.state.phase == .failed(UiError(code: errorCode, kind: .sync, message: en, retryable: false)))

        // A fresh code works for the same person.
        await vm.enrol(serverUrl: world.server.url, code: try await world.enrolCode("inspector"), deviceName: "x")
        guard case .enrolled = vm.state.phase else {
            Issue.record("a fresh code should enrol: \(vm.state.phase)")
            return
        }

        // A step the permit's state does not allow: the core's input error, shown by the VM.
        let permits = PermitWalkthroughViewModel(session: second.session)
        let people = try PermitPeople(world)
        second.clock.set(t(6, 40))
        await permits.draft(try people.draft())
        await permits.complete()
        #expect(permits.state.permit?.state == .draft)
        let refused = try #require(permits.state.error)
        #expect(refused.kind == .invalidInput)
        #expect(!hasChinese(refused.message))
    }
}

/// 2026-11-30 at `h:m` China time (a Monday): the permit's day, as in tests/tests/phone_flows.rs.
func t(_ h: Int64, _ m: Int64) -> Int64 {
    1_795_968_000 + h * 3600 + m * 60
}

/// The permit's people and inputs, named from the world.
struct PermitPeople {
    let permitId = "0193a1b2-0000-7000-8000-00000000f51f"
    let site = PermitLocation(latitude: 36.182, longitude: 116.772)
    let world: [String: String]

    init(_ world: World) throws {
        self.world = world.values
        for key in [
            "site_id", "site_name", "machine_id", "welder.name", "welder.certificate_no",
            "enrol.applicant.person", "enrol.fire_watch.person", "enrol.supervisor.person",
            "enrol.approver.person",
        ] where world.values[key] == nil {
            throw TestFailure.setup("world.properties lacks \(key)")
        }
    }

    private func v(_ key: String) -> String { world[key] ?? "" }
    private func person(_ slot: String) -> PermitPerson {
        PermitPerson(name: v("enrol.\(slot).person"), id: v("enrol.\(slot).person_id"))
    }
    private func actor(_ slot: String) -> PermitActorInput {
        PermitActorInput(name: v("enrol.\(slot).person"), id: v("enrol.\(slot).person_id"), role: nil)
    }

    var applicant: PermitActorInput { actor("applicant") }
    var supervisor: PermitActorInput { actor("supervisor") }
    var approver: PermitActorInput { actor("approver") }
    var fireWatch: PermitActorInput { actor("fire_watch") }

    func draft() throws -> PermitDraftInput {
        PermitDraftInput(
            siteId: v("site_id"), siteName: v("site_name"), rules: "gb30871", siteLocation: site,
            night: nil, approvalRadiusM: nil, work: "更换3号储罐出口管线法兰",
            hotWorkPoint: "3号储罐东侧管廊", hotWorkPoints: 1, level: .level2,
            validFrom: t(8, 0), validUntil: t(17, 0), applicant: person("applicant"),
            welders: [PermitPerson(name: v("welder.name"), id: v("welder.certificate_no"))],
            machines: [v("machine_id")], fireWatch: [person("fire_watch")],
            conditions: PermitConditions(
                windForce: nil, outdoor: false, shields: false, complexEnvironment: false),
            permitId: permitId)
    }

    /// Answer every item of `sections` with the evidence it asks for (as a checklist screen
    /// fills it in), the machine distance with the first must.
    @MainActor
    func answer(_ vm: PermitWalkthroughViewModel, sections: [ChecklistSection], gasAt: Int64) {
        for item in vm.state.checklist where sections.contains(item.section) {
            var evidence: [ChecklistEvidence] = item.evidence.map { need in
                switch need {
                case .photo:
                    return .photo(sha256: Data(repeating: 5, count: 32))
                case let .number(key, _, min, max):
                    let value = (min ?? 0) + 1
                    return .number(key: key, value: max.map { Swift.min(value, $0) } ?? value)
                case let .person(role):
                    return role == .welder
                        ? .person(role: role, name: v("welder.name"), id: v("welder.certificate_no"))
                        : .person(
                            role: role, name: v("enrol.fire_watch.person"),
                            id: v("enrol.fire_watch.person_id"))
                case .gasAnalysis:
                    return .gasAnalysis(
                        reading: ChecklistGasReading(
                            takenAt: gasAt, lelCentiPct: 500, concentrationCentiPct: 10,
                            point: "储罐内", analyst: "赵六"))
                }
            }
            if item.id == "must.01", case let .number(key, _, _, _)? = vm.state.machineDistance {
                evidence.append(.number(key: key, value: 6))
            }
            vm.answer(itemId: item.id, evidence: evidence)
        }
    }
}
