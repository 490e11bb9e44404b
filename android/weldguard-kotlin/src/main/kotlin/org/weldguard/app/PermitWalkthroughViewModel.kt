// The supervisor's permit walk-through (十不准、九必须): draft, submit, the on-site check item by
// item, approval, gas readings, start, completion, the post-work check and closing. Every step's
// answer is the core's PermitView (allowed actions with why not, deadlines, signatures); the
// preview of the answers so far names what blocks the check and the approval. Each signed step
// takes the signer of the person signing (their own key on this phone).

package org.weldguard.app

import kotlin.time.Duration
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import org.weldguard.core.ChecklistAnswerInput
import org.weldguard.core.ChecklistEvidence
import org.weldguard.core.ChecklistEvidenceRequirement
import org.weldguard.core.ChecklistItem
import org.weldguard.core.ChecklistSection
import org.weldguard.core.DueItem
import org.weldguard.core.PermitAction
import org.weldguard.core.PermitActorInput
import org.weldguard.core.PermitDraftInput
import org.weldguard.core.PermitFinding
import org.weldguard.core.PermitGasInput
import org.weldguard.core.PermitLocation
import org.weldguard.core.PermitView
import org.weldguard.core.PersonSigner
import org.weldguard.core.permitChecklist

data class PermitWalkthroughState(
    val permit: PermitView? = null,
    /** The checklist items in the app's language (十不准, 九必须, post-work items). */
    val checklist: List<ChecklistItem> = emptyList(),
    /** The machine-distance number a site-check answer carries (from the checklist). */
    val machineDistance: ChecklistEvidenceRequirement? = null,
    /** The answers so far, one per item, in the order given. */
    val answers: List<ChecklistAnswerInput> = emptyList(),
    /** What the core's last preview says blocks the site check or the approval (each finding
     * names its item). Empty: nothing blocks. */
    val blockedBy: List<PermitFinding> = emptyList(),
    /** What is due (this permit's and the phone's), soonest first. */
    val dues: List<DueItem> = emptyList(),
    val error: UiError? = null,
)

class PermitWalkthroughViewModel(session: WeldGuardSession, scope: CoroutineScope) :
    StateViewModel<PermitWalkthroughState>(session, scope, PermitWalkthroughState()) {

    private val failed: (PermitWalkthroughState, UiError) -> PermitWalkthroughState = { s, e -> s.copy(error = e) }

    init {
        loadChecklist()
    }

    /** Load the checklist in the app's language (again after the language changed). */
    fun loadChecklist(): Job = event(failed) {
        val lang = session.lang
        val checklist = session.call { permitChecklist(lang) }
        set { it.copy(checklist = checklist.items, machineDistance = checklist.machineDistance) }
    }

    /** Open a stored permit. */
    fun open(permitId: String): Job = step { lang, now -> permitShow(permitId, now, lang).view }

    fun draft(input: PermitDraftInput): Job = step { lang, now -> permitDraft(input, now, lang) }

    /** Answer one item: confirmed (notApplicableReason null) with its evidence, or not applicable
     * with the reason. A later answer to the same item replaces the earlier one. */
    fun answer(itemId: String, evidence: List<ChecklistEvidence>, notApplicableReason: String? = null) {
        val given = ChecklistAnswerInput(itemId, notApplicableReason, evidence)
        set { s ->
            val at = s.answers.indexOfFirst { it.itemId == itemId }
            s.copy(answers = if (at < 0) s.answers + given else s.answers.toMutableList().also { it[at] = given })
        }
    }

    /** Ask the core whether the site check's answers so far let the check and the approval go
     * ahead; nothing is saved or signed. */
    fun preview(): Job = event(failed) {
        val lang = session.lang
        val view = session.call {
            val answers = answersIn(ChecklistSection.PROHIBITION, ChecklistSection.MUST)
            permitPreviewAnswers(permitId(), answers, session.now(), lang)
        }
        set { it.copy(permit = view, blockedBy = blockers(view), error = null) }
    }

    fun submit(by: PermitActorInput, signer: PersonSigner, location: PermitLocation? = null): Job =
        step { lang, now -> permitSubmit(permitId(), by, location, signer, now, lang) }

    /** The on-site check with the prohibition and must answers given, signed. */
    fun siteCheck(by: PermitActorInput, signer: PersonSigner, location: PermitLocation? = null): Job =
        step(clearBlocked = true) { lang, now ->
            val answers = answersIn(ChecklistSection.PROHIBITION, ChecklistSection.MUST)
            permitSiteCheck(permitId(), by, answers, location, signer, now, lang)
        }

    fun approve(by: PermitActorInput, signer: PersonSigner, location: PermitLocation? = null): Job =
        step { lang, now -> permitApprove(permitId(), by, location, signer, now, lang) }

    fun recordGas(gas: PermitGasInput): Job = step { lang, now -> permitRecordGas(permitId(), gas, now, lang) }

    fun start(continuousMonitoring: Boolean = false, welder: String? = null): Job =
        step { lang, now -> permitStart(permitId(), continuousMonitoring, welder, now, lang) }

    fun complete(): Job = step { lang, now -> permitComplete(permitId(), now, lang) }

    /** The post-work check with the post-work answers given, and closing, signed. */
    fun close(by: PermitActorInput, signer: PersonSigner, location: PermitLocation? = null): Job =
        step { lang, now ->
            val answers = answersIn(ChecklistSection.POST_WORK)
            permitClose(permitId(), by, answers, location, signer, now, lang)
        }

    /** What is due now. */
    fun due(): Job = event(failed) {
        val lang = session.lang
        val dues = session.call { due(session.now(), lang) }
        set { it.copy(dues = dues) }
    }

    /** Keep [PermitWalkthroughState.dues] up to date from the session's deadlines flow. */
    fun watchDeadlines(period: Duration): Job = event(failed) {
        session.deadlines(period).collect { dues -> set { it.copy(dues = dues) } }
    }

    private fun permitId(): String =
        state.value.permit?.permitId ?: throw ShellException.wrongStep("no permit is open")

    /** The answers given to items of [sections] (blocking: runs inside a session call). */
    private fun answersIn(vararg sections: ChecklistSection): List<ChecklistAnswerInput> {
        val s = state.value
        val items = s.checklist.ifEmpty { permitChecklist(session.lang).items }
        val ids = items.filter { it.section in sections }.map { it.id }.toSet()
        return s.answers.filter { it.itemId in ids }
    }

    private fun blockers(view: PermitView): List<PermitFinding> =
        view.actions
            .filter { (it.action == PermitAction.SITE_CHECK || it.action == PermitAction.APPROVE) && !it.allowed }
            .flatMap { it.whyNot }
            .distinct()

    private fun step(
        clearBlocked: Boolean = false,
        call: org.weldguard.core.Device.(org.weldguard.core.Lang, Long) -> PermitView,
    ): Job = event(failed) {
        val lang = session.lang
        val view = session.call { call(lang, session.now()) }
        set { it.copy(permit = view, error = null, blockedBy = if (clearBlocked) emptyList() else it.blockedBy) }
    }
}
