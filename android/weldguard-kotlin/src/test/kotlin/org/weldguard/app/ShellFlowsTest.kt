// The three users' flows through the view models, against the real core and the platform's real
// server on loopback (started and stopped here; its registry, codes and enrolment codes from
// wg-shell-world): the welder allowed and refused (reasons in Chinese and English by the app's
// language), the inspector's inspection held exactly once, the supervisor's permit from draft to
// closed with every signature admitted, a phone offline for a while losing nothing, and errors as
// typed exceptions and UiError states. Mirrors tests/tests/phone_flows.rs.

package org.weldguard.app

import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlin.test.assertFailsWith
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import org.weldguard.core.FindingOutcome
import org.weldguard.core.LicenceState
import org.weldguard.core.PermitPerson
import org.weldguard.core.Role
import org.weldguard.core.WeldGuardException
import org.weldguard.core.permitChecklist

private fun hasChinese(s: String) = s.any { it in '\u4e00'..'\u9fff' }

/** One phone: its profile, its key, its clock, its view models' scope. */
private class Phone(
    val world: World,
    val slot: String,
    val key: JcaKey = JcaKey(),
    language: AppLanguage = AppLanguage.ZH,
) : AutoCloseable {
    val clock = TestClock()
    val session = newSession(key, clock, language)
    private val scopes = TestScope()
    val scope get() = scopes.scope

    /** Enrol through the enrolment screen's view model with the slot's one-time code. */
    suspend fun enrol(): EnrolmentState.Phase.Enrolled {
        val vm = EnrolmentViewModel(session, scope)
        vm.enrol(world.platform.url, world["enrol.$slot.code"], "${world["enrol.$slot.person"]}的手机").join()
        val enrolled = assertIs<EnrolmentState.Phase.Enrolled>(vm.state.value.phase, "${vm.state.value}")
        assertEquals(world["enrol.$slot.person_id"], enrolled.personId)
        return enrolled
    }

    /** Sync through the sync screen's view model, at the system time. */
    suspend fun sync(): SyncStatusState {
        clock.system()
        val vm = SyncStatusViewModel(session, scope)
        vm.sync().join()
        return vm.state.value
    }

    suspend fun synced(): SyncStatusState.Phase.Synced {
        val s = sync()
        return assertIs<SyncStatusState.Phase.Synced>(s.phase, "${s.phase}")
    }

    override fun close() {
        scopes.close()
        session.close()
    }
}

class ShellFlowsTest {
    @Test
    fun aWeldersPhoneIsAllowedAndAnExpiredLicenceIsRefusedInTheAppLanguage() = runBlocking {
        Platform().use { platform ->
            val world = World(platform)
            Phone(world, "welder").use { phone ->
                val enrolled = phone.enrol()
                assertEquals(Role.WELDER, enrolled.role)
                assertEquals(world["welder.name"], enrolled.personName)
                assertEquals(0, phone.synced().rejected)

                val scan = ScanToStartViewModel(phone.session, phone.scope, world["site_id"])
                scan.onImage(world["image.machine_label"]).join() // a photo file by its path
                assertEquals(ScanToStartState.Step.SCAN_WELDER, scan.state.value.step, "${scan.state.value}")
                assertEquals(world["machine_id"], scan.state.value.machineId)
                scan.onImage(world.image("credential")).join()
                val allowed = scan.state.value
                assertEquals(ScanToStartState.Step.DECIDED, allowed.step, "$allowed")
                assertTrue(allowed.decision!!.allowed, "${allowed.decision}")
                assertEquals(world["welder.name"], allowed.welderName)
                assertNotNull(allowed.decision!!.sessionId)

                // 赵九's licence expired (his credential still says 2030: the registry decides).
                val reasons = mutableMapOf<AppLanguage, ScanToStartState.Decision>()
                for (language in listOf(AppLanguage.ZH, AppLanguage.EN)) {
                    phone.session.language = language
                    scan.reset()
                    scan.onImage(world.image("machine_label")).join()
                    scan.onImage(world.image("expired_credential")).join()
                    val refused = assertNotNull(scan.state.value.decision, "${scan.state.value}")
                    assertFalse(refused.allowed)
                    val expiry = refused.reasonCodes.indexOfFirst { "expired" in it }
                    assertTrue(expiry >= 0, "an expiry reason in ${refused.reasonCodes}")
                    assertEquals(language == AppLanguage.ZH, hasChinese(refused.reasons[expiry]), refused.reasons[expiry])
                    reasons[language] = refused
                }
                assertEquals(reasons[AppLanguage.ZH]!!.reasonCodes, reasons[AppLanguage.EN]!!.reasonCodes)

                val pushed = phone.synced()
                assertEquals(Triple(3L, 3L, 0L), Triple(pushed.pushed, pushed.applied, pushed.rejected))
                assertEquals(3, platform.held("work_session").size)
            }
        }
    }

    @Test
    fun anInspectorsInspectionIsHeldExactlyOnce() = runBlocking {
        Platform().use { platform ->
            val world = World(platform)
            Phone(world, "inspector").use { phone ->
                assertEquals(Role.INSPECTOR, phone.enrol().role)
                phone.synced()
                val vm = InspectorCheckViewModel(phone.session, phone.scope)
                vm.onImage(world.image("credential")).join()
                val checked = assertIs<InspectorCheckState.Phase.Checked>(vm.state.value.phase, "${vm.state.value}")
                assertTrue(checked.check.codeVerified)
                assertEquals(LicenceState.VALID, checked.check.state)
                val licence = assertNotNull(checked.check.licence)
                assertEquals(world["welder.certificate_no"], licence.certificateNo)
                assertEquals(world["welder.name"], licence.name)
                assertFalse(world["welder.id_number"] in licence.idNumberMasked, licence.idNumberMasked)
                assertTrue(checked.check.boundMachines.any { it.machineId == world["machine_id"] })

                val item = permitChecklist(phone.session.lang).items.first().id
                vm.addFinding(item, FindingOutcome.NOT_COMPLIANT, "动火点周边有可燃物", listOf(ByteArray(32) { 3 }))
                vm.record(world["site_id"], "现场整改", machineText = world["code.machine_label"]).join()
                val recorded = assertIs<InspectorCheckState.Phase.Recorded>(vm.state.value.phase, "${vm.state.value}")
                val saved = phone.session.call { inspections(10u, phone.session.lang) }.single()
                assertEquals(recorded.inspectionId, saved.inspectionId)
                assertTrue(saved.violations.isNotEmpty(), "the not-compliant finding is a violation")

                val status = SyncStatusViewModel(phone.session, phone.scope)
                status.refresh().join()
                assertEquals(1, status.state.value.pendingRecords)
                val first = phone.synced()
                assertEquals(Triple(1L, 1L, 0L), Triple(first.pushed, first.applied, first.rejected))
                // The second sync through the session's flow: progress, then the summary.
                phone.clock.system()
                val events = phone.session.sync().toList()
                val again = assertIs<SyncEvent.Finished>(events.last(), "$events").summary
                assertTrue(events.dropLast(1).all { it is SyncEvent.Progress }, "$events")
                assertTrue(events.any { it is SyncEvent.Progress }, "$events")
                assertEquals(0UL, again.pushed, "nothing left to push")
                assertEquals(listOf(recorded.inspectionId), platform.held("inspection"))
            }
        }
    }

    @Test
    fun aSupervisorsPermitFromDraftToClosedReachesThePlatformSigned() = runBlocking {
        Platform().use { platform ->
            val world = World(platform)
            // Each person enrols their own phone with their own key: the directory vouches for them.
            val keys = mutableMapOf<String, JcaKey>()
            for (slot in listOf("applicant", "fire_watch", "approver")) {
                Phone(world, slot, JcaKey(present = slot == "approver")).use { phone ->
                    phone.enrol()
                    keys[slot] = phone.key
                }
            }
            Phone(world, "supervisor").use { phone ->
                assertEquals(Role.SUPERVISOR, phone.enrol().role)
                phone.synced()
                val permitId = "0193a1b2-0000-7000-8000-0000000a0d02"
                val vm = PermitWalkthroughViewModel(phone.session, phone.scope)
                walkPermit(
                    phone.session, phone.clock, vm,
                    Signers(keys["applicant"]!!, phone.key, keys["approver"]!!, keys["fire_watch"]!!),
                    permitId = permitId, siteId = world["site_id"], machineId = world["machine_id"],
                    welder = PermitPerson(world["welder.name"], world["welder.certificate_no"]),
                )
                val verified = phone.session.call { permitVerify(permitId, phone.session.lang) }
                assertTrue(verified.valid, "${verified.reason}")
                val steps = phone.session.call { permitShow(permitId, phone.clock.nowUnix(), phone.session.lang) }.steps.size.toLong()

                val pushed = phone.synced()
                assertEquals(Triple(steps, steps, 0L), Triple(pushed.pushed, pushed.applied, pushed.rejected), "$pushed")
                assertEquals(steps, platform.held("permit_step").size.toLong())
                val admitted = platform.world("permit", "--id", permitId)
                assertEquals("closed", admitted.getProperty("state"))
                assertEquals(steps.toString(), admitted.getProperty("steps"))
                val signers = admitted.getProperty("signers").split(",").map { it.substringBefore(':') }.toSet()
                assertEquals(setOf("S-001", "S-002", "S-003", "S-004"), signers)
            }
        }
    }

    @Test
    fun aPhoneOfflineForAWhileLosesNothingAndDuplicatesNothing() = runBlocking {
        Platform().use { platform ->
            val world = World(platform)
            Phone(world, "welder").use { phone ->
                phone.enrol()
                phone.synced()
                platform.stop()

                // Offline: two decisions recorded on the phone; the sync fails and says it may retry.
                val scan = ScanToStartViewModel(phone.session, phone.scope, world["site_id"])
                val sessions = mutableListOf<String>()
                for (code in listOf("credential", "expired_credential")) {
                    scan.reset()
                    scan.onImage(world.image("machine_label")).join()
                    scan.onImage(world.image(code)).join()
                    sessions += assertNotNull(scan.state.value.decision?.sessionId, "${scan.state.value}")
                }
                val offline = phone.sync()
                val failed = assertIs<SyncStatusState.Phase.Failed>(offline.phase)
                assertEquals(UiErrorKind.SYNC, failed.error.kind)
                assertTrue(failed.error.retryable, "${failed.error}")
                assertEquals(2, offline.pendingRecords)

                // The platform is back: both reach it, once.
                platform.start()
                val back = phone.synced()
                assertEquals(Triple(2L, 2L, 0L), Triple(back.pushed, back.applied, back.rejected), "$back")
                assertEquals(0L, phone.synced().pushed)
                val held = platform.held("work_session")
                assertEquals(sessions.toSet(), held.toSet())
                assertEquals(held.size, held.toSet().size)
            }
        }
    }

    @Test
    fun errorsArriveAsTypedExceptionsAndViewModelsShowThem() = runBlocking {
        Platform().use { platform ->
            val world = World(platform)
            Phone(world, "inspector", language = AppLanguage.EN).use { phone ->
                phone.enrol()
                // The code was used: the platform refuses, not retryable; the screen shows it.
                Phone(world, "inspector", language = AppLanguage.EN).use { second ->
                    val vm = EnrolmentViewModel(second.session, second.scope)
                    vm.enrol(platform.url, world["enrol.inspector.code"], "second phone").join()
                    val failed = assertIs<EnrolmentState.Phase.Failed>(vm.state.value.phase)
                    assertEquals(UiErrorKind.SYNC, failed.error.kind)
                    assertFalse(failed.error.retryable, "${failed.error}")
                    assertFalse(hasChinese(failed.error.message), failed.error.message)
                    val e = assertFailsWith<WeldGuardException.Sync> {
                        second.session.enrol(platform.url, world["enrol.inspector.code"], "second phone")
                    }
                    assertEquals(failed.error.code, e.code)
                    // A fresh code from the desk works.
                    val fresh = platform.world("enrol-code", "--slot", "inspector").getProperty("code")
                    vm.enrol(platform.url, fresh, "second phone").join()
                    assertIs<EnrolmentState.Phase.Enrolled>(vm.state.value.phase, "${vm.state.value}")
                }
                // An unknown permit: an input error, typed, and the walk-through's error state.
                assertFailsWith<WeldGuardException.InvalidInput> {
                    phone.session.call { permitStart("no-such-permit", false, null, phone.clock.nowUnix(), phone.session.lang) }
                }
                val permits = PermitWalkthroughViewModel(phone.session, phone.scope)
                permits.open("no-such-permit").join()
                val error = assertNotNull(permits.state.value.error)
                assertEquals(UiErrorKind.INVALID_INPUT, error.kind)
                // A step before any permit is open: the shell's own error state.
                permits.complete().join()
                assertEquals("shell.wrong_step", permits.state.value.error?.code)
                // Not a welder's code at the inspector's check.
                val check = InspectorCheckViewModel(phone.session, phone.scope)
                check.onImage(world.image("machine_label")).join()
                val failed = assertIs<InspectorCheckState.Phase.Failed>(check.state.value.phase)
                assertEquals("code.not_a_welder_code", failed.error.code)
                assertEquals(UiErrorKind.INVALID_INPUT, failed.error.kind)
            }
        }
    }
}
