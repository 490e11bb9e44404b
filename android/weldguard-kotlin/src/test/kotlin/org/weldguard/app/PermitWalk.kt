// The supervisor's permit walk through PermitWalkthroughViewModel, shared by the offline test and
// the flow against the platform: draft, submit, the site check's answers built only from what the
// core's checklist lists (a failed must item first: the state names it), the approval refused
// without the approver's presence, gas, start, completion, the fire watch through the deadlines
// flow, the post-work check and closing.

package org.weldguard.app

import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.delay
import kotlinx.coroutines.withTimeout
import org.weldguard.core.ChecklistEvidence
import org.weldguard.core.ChecklistEvidenceRequirement
import org.weldguard.core.ChecklistGasReading
import org.weldguard.core.ChecklistItem
import org.weldguard.core.ChecklistPersonRole
import org.weldguard.core.ChecklistSection
import org.weldguard.core.DueKind
import org.weldguard.core.PermitAction
import org.weldguard.core.PermitActorInput
import org.weldguard.core.PermitConditions
import org.weldguard.core.PermitDraftInput
import org.weldguard.core.PermitGasInput
import org.weldguard.core.PermitLevel
import org.weldguard.core.PermitLocation
import org.weldguard.core.PermitPerson
import org.weldguard.core.PermitState
import org.weldguard.core.PersonSigner

val SITE_LOCATION = PermitLocation(latitude = 36.182, longitude = 116.772)

/** The people who sign, each with their own key. */
class Signers(
    val applicant: PersonSigner,
    val supervisor: PersonSigner,
    val approver: PersonSigner,
    val closer: PersonSigner,
)

fun by(name: String, id: String) = PermitActorInput(name = name, id = id, role = null)

/** The evidence [item] asks for, as a screen collects it. */
fun evidenceFor(item: ChecklistItem, welder: PermitPerson, gasAt: Long): List<ChecklistEvidence> =
    item.evidence.map { req ->
        when (req) {
            is ChecklistEvidenceRequirement.Photo -> ChecklistEvidence.Photo(ByteArray(32) { 5 })
            is ChecklistEvidenceRequirement.Number -> {
                val value = (req.min ?: 0L) + 1
                ChecklistEvidence.Number(req.key, req.max?.let { minOf(it, value) } ?: value)
            }
            is ChecklistEvidenceRequirement.Person ->
                if (req.role == ChecklistPersonRole.WELDER) {
                    ChecklistEvidence.Person(req.role, welder.name, welder.id)
                } else {
                    ChecklistEvidence.Person(req.role, "王五", "S-002")
                }
            is ChecklistEvidenceRequirement.GasAnalysis -> ChecklistEvidence.GasAnalysis(
                ChecklistGasReading(
                    takenAt = gasAt, lelCentiPct = 500u, concentrationCentiPct = 10u, point = "储罐内", analyst = "赵六",
                ),
            )
        }
    }

/** Walk permit [permitId] from draft to closed; returns the closed state. */
suspend fun walkPermit(
    session: WeldGuardSession,
    clock: TestClock,
    vm: PermitWalkthroughViewModel,
    signers: Signers,
    permitId: String,
    siteId: String,
    machineId: String,
    welder: PermitPerson,
): PermitWalkthroughState {
    fun state() = vm.state.value
    fun ok() = assertNull(state().error, "${state().error}")

    vm.loadChecklist().join()
    val checklist = state().checklist
    assertTrue(checklist.isNotEmpty())
    clock.set(t(6, 40))
    vm.draft(
        PermitDraftInput(
            siteId = siteId, siteName = "肥城某化工厂三车间", rules = "gb30871", siteLocation = SITE_LOCATION,
            night = null, approvalRadiusM = null, work = "更换3号储罐出口管线法兰", hotWorkPoint = "3号储罐东侧管廊",
            hotWorkPoints = 1u, level = PermitLevel.LEVEL2, validFrom = t(8, 0), validUntil = t(17, 0),
            applicant = PermitPerson("张三", "S-001"), welders = listOf(welder), machines = listOf(machineId),
            fireWatch = listOf(PermitPerson("王五", "S-002")),
            conditions = PermitConditions(windForce = null, outdoor = false, shields = false, complexEnvironment = false),
            permitId = permitId,
        ),
    ).join()
    ok()
    assertEquals(PermitState.DRAFT, state().permit?.state)
    clock.set(t(7, 0))
    vm.submit(by("张三", "S-001"), signers.applicant).join()
    ok()
    assertEquals(PermitState.SUBMITTED, state().permit?.state)

    // The site check, item by item; the first "must" item that asks for evidence lacks it.
    val distance = state().machineDistance as ChecklistEvidenceRequirement.Number
    val checkItems = checklist.filter { it.section == ChecklistSection.PROHIBITION || it.section == ChecklistSection.MUST }
    val must = checkItems.first { it.section == ChecklistSection.MUST && it.evidence.isNotEmpty() }
    for (item in checkItems) {
        val evidence = evidenceFor(item, welder, t(7, 15)).toMutableList()
        if (item.id == "must.01") evidence += ChecklistEvidence.Number(distance.key, 6)
        vm.answer(item.id, if (item.id == must.id) evidence.filter { it == ChecklistEvidence.Number(distance.key, 6) } else evidence)
    }
    clock.set(t(7, 18))
    vm.preview().join()
    ok()
    val blocked = state().blockedBy
    assertTrue(blocked.isNotEmpty(), "a failed must item blocks the check")
    assertTrue(blocked.any { it.itemId == must.id }, "the state names ${must.id}: ${blocked.map { it.itemId to it.text }}")
    val lang = session.language
    for (f in blocked) assertEquals(if (lang == AppLanguage.ZH) f.zh else f.en, f.text)
    for (action in listOf(PermitAction.SITE_CHECK, PermitAction.APPROVE)) {
        assertFalse(state().permit!!.actions.first { it.action == action }.allowed, "$action")
    }
    // The item answered: the check may go ahead (the approval still waits for it).
    val mustEvidence = evidenceFor(must, welder, t(7, 15)).toMutableList()
    if (must.id == "must.01") mustEvidence += ChecklistEvidence.Number(distance.key, 6)
    vm.answer(must.id, mustEvidence)
    vm.preview().join()
    ok()
    assertTrue(state().permit!!.actions.first { it.action == PermitAction.SITE_CHECK }.allowed, "${state().blockedBy}")
    assertTrue(state().blockedBy.none { it.itemId == must.id }, "${state().blockedBy}")

    clock.set(t(7, 20))
    vm.siteCheck(by("孙七", "S-003"), signers.supervisor, SITE_LOCATION).join()
    ok()
    assertEquals(PermitState.CHECKED, state().permit?.state)
    assertTrue(state().permit!!.actions.first { it.action == PermitAction.APPROVE }.allowed)

    // The key store did not verify the approver's presence: a signing error the screen shows,
    // nothing saved.
    clock.set(t(7, 40))
    vm.approve(by("周八", "S-004"), JcaKey(present = false)).join()
    val refused = assertNotNull(state().error)
    assertEquals(UiErrorKind.SIGNING, refused.kind)
    assertEquals("permit.presence_required", refused.code)
    assertEquals(PermitState.CHECKED, state().permit?.state)

    vm.approve(by("周八", "S-004"), signers.approver, SITE_LOCATION).join()
    ok()
    assertEquals(PermitState.APPROVED, state().permit?.state)
    clock.set(t(8, 55))
    vm.recordGas(PermitGasInput(lelCentiPct = 500u, concentrationCentiPct = 10u, point = "动火点", analyst = "赵六", takenAt = null)).join()
    ok()
    clock.set(t(9, 0))
    vm.start().join()
    ok()
    assertEquals(PermitState.ACTIVE, state().permit?.state)
    clock.set(t(12, 0))
    vm.complete().join()
    ok()
    assertEquals(PermitState.COMPLETED, state().permit?.state)
    assertFalse(state().permit!!.actions.first { it.action == PermitAction.CLOSE }.allowed, "the fire watch is on")

    // The fire watch through the deadlines flow (polled on the session's clock).
    clock.set(t(12, 5))
    val watching = vm.watchDeadlines(20.milliseconds)
    val watch = withTimeout(20.seconds) {
        while (state().dues.none { it.kind == DueKind.FIRE_WATCH }) delay(10)
        state().dues.first { it.kind == DueKind.FIRE_WATCH }
    }
    assertEquals(permitId, watch.permitId)
    assertTrue(watch.dueAt > t(12, 5) && !watch.overdue, "$watch")
    assertTrue(watch.text.isNotBlank())
    // Past the end of the watch the flow says so.
    clock.set(watch.dueAt + 60)
    withTimeout(20.seconds) {
        while (state().dues.firstOrNull { it.kind == DueKind.FIRE_WATCH }?.overdue != true &&
            state().dues.any { it.kind == DueKind.FIRE_WATCH }
        ) delay(10)
    }
    watching.cancel()

    for (item in checklist.filter { it.section == ChecklistSection.POST_WORK }) {
        vm.answer(item.id, evidenceFor(item, welder, watch.dueAt))
    }
    clock.set(watch.dueAt)
    vm.close(by("王五", "S-002"), signers.closer, SITE_LOCATION).join()
    ok()
    assertEquals(PermitState.CLOSED, state().permit?.state)
    assertEquals(4, state().permit!!.signatures.size)
    vm.due().join()
    assertTrue(state().dues.none { it.permitId == permitId }, "${state().dues}")
    return state()
}
