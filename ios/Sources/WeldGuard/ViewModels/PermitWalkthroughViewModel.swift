// Permit walk-through (十不准九必须), the supervisor's screen: draft, the checklist answered item
// by item, preview (what blocks the site check or the approval, named by the core), the signed
// steps, gas readings, start, completion, closing, and what is due. Mirrors the Kotlin shell's
// PermitWalkthroughViewModel; every rule stays in the core.
import Foundation

#if canImport(Observation)
    import Observation
#endif

/// What the permit walk-through screen shows.
public struct PermitWalkthroughState: Sendable, Equatable {
    public var permit: PermitView?
    /// The checklist items (十不准、九必须、处置), in the app language.
    public var checklist: [ChecklistItem]
    /// The machine-distance number any site-check answer carries (from the checklist).
    public var machineDistance: ChecklistEvidenceRequirement?
    /// The answers given so far, in the order given (one per item).
    public var answers: [ChecklistAnswerInput]
    /// What the core says blocks the site check or the approval (their `whyNot`).
    public var blockedBy: [PermitFinding]
    public var dues: [DueItem]
    public var error: UiError?

    public init(
        permit: PermitView? = nil, checklist: [ChecklistItem] = [],
        machineDistance: ChecklistEvidenceRequirement? = nil, answers: [ChecklistAnswerInput] = [],
        blockedBy: [PermitFinding] = [], dues: [DueItem] = [], error: UiError? = nil
    ) {
        self.permit = permit
        self.checklist = checklist
        self.machineDistance = machineDistance
        self.answers = answers
        self.blockedBy = blockedBy
        self.dues = dues
        self.error = error
    }
}

#if canImport(Observation)
    @Observable
#endif
@MainActor
public final class PermitWalkthroughViewModel {
    public private(set) var state = PermitWalkthroughState()
    private let session: WeldGuardSession

    public init(session: WeldGuardSession) {
        self.session = session
        do {
            let checklist = try permitChecklist(lang: session.language.lang)
            state.checklist = checklist.items
            state.machineDistance = checklist.machineDistance
        } catch {
            state.error = UiError.from(error, language: session.language)
        }
    }

    /// Draft a new permit (the applicant; not signed).
    public func draft(_ input: PermitDraftInput) async {
        state.answers = []
        await run { device, lang, now in try device.permitDraft(input: input, nowUnix: now, lang: lang) }
    }

    /// Answer one checklist item (replacing an earlier answer to it).
    public func answer(
        itemId: String, notApplicableReason: String? = nil, evidence: [ChecklistEvidence] = []
    ) {
        let answer = ChecklistAnswerInput(
            itemId: itemId, notApplicableReason: notApplicableReason, evidence: evidence)
        if let index = state.answers.firstIndex(where: { $0.itemId == itemId }) {
            state.answers[index] = answer
        } else {
            state.answers.append(answer)
        }
    }

    /// What the site check and the approval would say with the answers so far (saves nothing).
    public func preview() async {
        let answers = siteCheckAnswers()
        await step { id, device, lang, now in
            try device.permitPreviewAnswers(
                permitId: id, answers: answers, nowUnix: now, lang: lang)
        }
    }

    /// The applicant submits, signed.
    public func submit(by: PermitActorInput, signer: PersonSigner, location: PermitLocation? = nil)
        async
    {
        await step { id, device, lang, now in
            try device.permitSubmit(
                permitId: id, by: by, location: location, signerKey: signer, nowUnix: now,
                lang: lang)
        }
    }

    /// The site check with the prohibition and must answers given, signed.
    public func siteCheck(
        by: PermitActorInput, signer: PersonSigner, location: PermitLocation? = nil
    ) async {
        let answers = siteCheckAnswers()
        await step { id, device, lang, now in
            try device.permitSiteCheck(
                permitId: id, by: by, answers: answers, location: location, signerKey: signer,
                nowUnix: now, lang: lang)
        }
    }

    /// The approval, signed with the person's presence.
    public func approve(by: PermitActorInput, signer: PersonSigner, location: PermitLocation? = nil)
        async
    {
        await step { id, device, lang, now in
            try device.permitApprove(
                permitId: id, by: by, location: location, signerKey: signer, nowUnix: now,
                lang: lang)
        }
    }

    /// Record a gas analysis.
    public func recordGas(_ gas: PermitGasInput) async {
        await step { id, device, lang, now in
            try device.permitRecordGas(permitId: id, gas: gas, nowUnix: now, lang: lang)
        }
    }

    /// Work starts.
    public func start(continuousMonitoring: Bool = false, welder: String? = nil) async {
        await step { id, device, lang, now in
            try device.permitStart(
                permitId: id, continuousMonitoring: continuousMonitoring, welder: welder,
                nowUnix: now, lang: lang)
        }
    }

    /// Work finished; the fire watch runs.
    public func complete() async {
        await step { id, device, lang, now in
            try device.permitComplete(permitId: id, nowUnix: now, lang: lang)
        }
    }

    /// The post-work answers given and closing, signed.
    public func close(by: PermitActorInput, signer: PersonSigner, location: PermitLocation? = nil)
        async
    {
        let postWork = answers(in: [.postWork])
        await step { id, device, lang, now in
            try device.permitClose(
                permitId: id, by: by, postWork: postWork, location: location, signerKey: signer,
                nowUnix: now, lang: lang)
        }
    }

    /// What is due now (the fire watch after completion, gas validity, expiry…).
    public func due() async {
        do {
            state.dues = try await session.due()
        } catch {
            state.error = UiError.from(error, language: session.language)
        }
    }

    // MARK: -

    private func siteCheckAnswers() -> [ChecklistAnswerInput] {
        answers(in: [.prohibition, .must])
    }

    /// The answers given to items of `sections` (the checklist says which item is where).
    private func answers(in sections: [ChecklistSection]) -> [ChecklistAnswerInput] {
        let ids = Set(state.checklist.filter { sections.contains($0.section) }.map(\.id))
        return state.answers.filter { ids.contains($0.itemId) }
    }

    /// A step on the current permit (its id first).
    private func step(
        _ body: @escaping @Sendable (String, Device, Lang, Int64) throws -> PermitView
    ) async {
        guard let id = state.permit?.permitId else { return }
        await run { device, lang, now in try body(id, device, lang, now) }
    }

    private func run(_ body: @escaping @Sendable (Device, Lang, Int64) throws -> PermitView) async {
        do {
            let view = try await session.call(body)
            state.permit = view
            state.blockedBy = Self.blocked(view)
            state.error = nil
        } catch {
            state.error = UiError.from(error, language: session.language)
        }
    }

    /// The findings the core gives for a site check or approval it would refuse now.
    private static func blocked(_ view: PermitView) -> [PermitFinding] {
        var seen = Set<String>()
        return [PermitAction.siteCheck, .approve]
            .compactMap { view.action($0) }
            .filter { !$0.allowed }
            .flatMap(\.whyNot)
            .filter { seen.insert($0.code + "\u{0}" + $0.text).inserted }
    }
}
