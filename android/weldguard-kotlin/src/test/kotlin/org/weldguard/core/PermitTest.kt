// The hot-work permit walk-through through the generated Kotlin bindings on the JVM, as the Android
// shell calls it: a P-256 key from the JCA standing in for Android Keystore behind the PersonSigner
// callback (DER signatures turned into r || s, the public key compressed), the checklist answers
// built only from what permitChecklist lists, approval refused without the person's presence, and
// the fire watch in due() after the work.

package org.weldguard.core

import java.math.BigInteger
import java.nio.file.Files
import java.security.KeyPairGenerator
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.time.ZoneOffset
import java.time.ZonedDateTime
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue

/** 2026-11-30 (a Monday) at h:m, China time, in Unix seconds. */
private fun t(h: Int, m: Int): Long =
    ZonedDateTime.of(2026, 11, 30, h, m, 0, 0, ZoneOffset.ofHours(8)).toEpochSecond()

private const val PERMIT = "0193a1b2-0000-7000-8000-0000000c0001"

private fun fixed32(n: BigInteger): ByteArray {
    val b = n.toByteArray()
    return when {
        b.size == 32 -> b
        b.size > 32 -> b.copyOfRange(b.size - 32, b.size)
        else -> ByteArray(32 - b.size) + b
    }
}

/** An ECDSA DER signature (SEQUENCE of two INTEGERs) as the 64 bytes r || s the core takes. */
private fun derToRaw(der: ByteArray): ByteArray {
    var i = if (der[1].toInt() and 0x80 != 0) 2 + (der[1].toInt() and 0x7f) else 2
    fun integer(): BigInteger {
        require(der[i].toInt() == 0x02) { "not a DER integer" }
        val len = der[i + 1].toInt()
        val value = BigInteger(1, der.copyOfRange(i + 2, i + 2 + len))
        i += 2 + len
        return value
    }
    val r = integer()
    val s = integer()
    return fixed32(r) + fixed32(s)
}

/** A software P-256 key behind the PersonSigner callback; answers userPresent as configured. */
private class JcaSigner(private val present: Boolean) : PersonSigner {
    private val pair = KeyPairGenerator.getInstance("EC")
        .apply { initialize(ECGenParameterSpec("secp256r1")) }
        .generateKeyPair()
    val asked = mutableListOf<Pair<SignPurpose, Boolean>>()

    override fun publicKey(): ByteArray {
        val w = (pair.public as ECPublicKey).w
        val prefix: Byte = if (w.affineY.testBit(0)) 3 else 2
        return byteArrayOf(prefix) + fixed32(w.affineX)
    }

    override fun sign(request: SignRequest): SignedBytes {
        asked += request.purpose to request.requirePresence
        val der = Signature.getInstance("SHA256withECDSA").run {
            initSign(pair.private)
            update(request.message)
            sign()
        }
        return SignedBytes(signature = derToRaw(der), userPresent = present)
    }
}

private fun person(name: String, id: String) = PermitPerson(name = name, id = id)

private fun by(name: String, id: String) = PermitActorInput(name = name, id = id, role = null)

private val site = PermitLocation(latitude = 36.182, longitude = 116.772)

/** Every item of `sections` confirmed with the evidence the checklist says it needs. */
private fun answers(sections: Set<ChecklistSection>, gasAt: Long): List<ChecklistAnswerInput> {
    val checklist = permitChecklist(Lang.EN)
    val distance = checklist.machineDistance as ChecklistEvidenceRequirement.Number
    return checklist.items.filter { it.section in sections }.map { item ->
        val evidence = item.evidence.map { req ->
            when (req) {
                is ChecklistEvidenceRequirement.Photo -> ChecklistEvidence.Photo(ByteArray(32) { 9 })
                is ChecklistEvidenceRequirement.Number -> {
                    val value = (req.min ?: 0L) + 1
                    ChecklistEvidence.Number(req.key, req.max?.let { minOf(it, value) } ?: value)
                }
                is ChecklistEvidenceRequirement.Person ->
                    if (req.role == ChecklistPersonRole.WELDER) {
                        ChecklistEvidence.Person(req.role, "李四", "T370983199001011234")
                    } else {
                        ChecklistEvidence.Person(req.role, "王五", "S-002")
                    }
                is ChecklistEvidenceRequirement.GasAnalysis -> ChecklistEvidence.GasAnalysis(
                    ChecklistGasReading(
                        takenAt = gasAt, lelCentiPct = 500u, concentrationCentiPct = 10u,
                        point = "动火点", analyst = "赵六",
                    ),
                )
            }
        }.toMutableList()
        if (item.id == "must.01") evidence += ChecklistEvidence.Number(distance.key, 6)
        ChecklistAnswerInput(itemId = item.id, notApplicableReason = null, evidence = evidence)
    }
}

class PermitTest {
    @Test
    fun aPermitFromDraftToClosedWithPresenceForTheApprovalAndTheFireWatchDue() {
        val dir = Files.createTempDirectory("weldguard-permit")
        val device = Device.open(dir.resolve("profile.db").toString())
        val draft = device.permitDraft(
            PermitDraftInput(
                siteId = "site-370983-001", siteName = "肥城某化工厂三车间", rules = "gb30871",
                siteLocation = site, night = null, approvalRadiusM = null,
                work = "更换3号储罐出口管线法兰", hotWorkPoint = "3号储罐东侧管廊", hotWorkPoints = 1u,
                level = PermitLevel.LEVEL2, validFrom = t(8, 0), validUntil = t(17, 0),
                applicant = person("张三", "S-001"),
                welders = listOf(person("李四", "T370983199001011234")),
                machines = listOf("M-370983-0001"),
                fireWatch = listOf(person("王五", "S-002")),
                conditions = PermitConditions(windForce = null, outdoor = false, shields = false, complexEnvironment = false),
                permitId = PERMIT,
            ),
            t(6, 40), Lang.EN,
        )
        assertEquals(PermitState.DRAFT, draft.state)
        assertTrue(draft.actions.first { it.action == PermitAction.SUBMIT }.allowed)

        device.permitSubmit(PERMIT, by("张三", "S-001"), null, JcaSigner(false), t(7, 0), Lang.EN)
        val checkAnswers = answers(setOf(ChecklistSection.PROHIBITION, ChecklistSection.MUST), t(7, 15))
        val preview = device.permitPreviewAnswers(PERMIT, checkAnswers, t(7, 18), Lang.ZH)
        val check = preview.actions.first { it.action == PermitAction.SITE_CHECK }
        assertTrue(check.allowed, check.whyNot.joinToString { it.code + " " + it.en })
        val checked = device.permitSiteCheck(
            PERMIT, by("孙七", "S-003"), checkAnswers, site, JcaSigner(false), t(7, 20), Lang.EN,
        )
        assertEquals(PermitState.CHECKED, checked.state)
        val approve = checked.actions.first { it.action == PermitAction.APPROVE }
        assertTrue(PermitNeed.PRESENCE in approve.needs)

        // The key store did not verify the approver: a typed signing error, nothing saved.
        val absent = JcaSigner(false)
        val refused = assertFailsWith<WeldGuardException.Signing> {
            device.permitApprove(PERMIT, by("周八", "S-004"), site, absent, t(7, 40), Lang.EN)
        }
        assertEquals("permit.presence_required", refused.code)
        assertEquals(listOf(SignPurpose.PERMIT_APPROVE to true), absent.asked)
        assertEquals(PermitState.CHECKED, device.permitShow(PERMIT, t(7, 41), Lang.EN).view.state)

        val approved = device.permitApprove(PERMIT, by("周八", "S-004"), site, JcaSigner(true), t(7, 42), Lang.EN)
        assertEquals(PermitState.APPROVED, approved.state)
        assertEquals(true, approved.signatures.first { it.step == PermitSignedStep.APPROVE }.userPresent)
        val start = approved.actions.first { it.action == PermitAction.START }
        assertFalse(start.allowed)
        assertTrue(start.whyNot.any { it.code == "permit.rule.gas_analysis_missing" })

        device.permitRecordGas(
            PERMIT,
            PermitGasInput(lelCentiPct = 500u, concentrationCentiPct = 10u, point = "动火点", analyst = "赵六", takenAt = null),
            t(8, 55), Lang.EN,
        )
        device.permitStart(PERMIT, false, null, t(9, 0), Lang.EN)
        val completed = device.permitComplete(PERMIT, t(12, 0), Lang.EN)
        assertEquals(PermitState.COMPLETED, completed.state)
        val due = device.due(t(12, 5), Lang.ZH)
        assertEquals(DueKind.FIRE_WATCH, due.first().kind)
        assertEquals(t(12, 30), due.first().dueAt)
        assertFalse(due.first().overdue)

        val closer = JcaSigner(false)
        val closed = device.permitClose(
            PERMIT, by("王五", "S-002"), answers(setOf(ChecklistSection.POST_WORK), t(12, 30)),
            site, closer, t(12, 30), Lang.EN,
        )
        assertEquals(PermitState.CLOSED, closed.state)
        assertEquals(4, closed.signatures.size)
        assertEquals(listOf(SignPurpose.PERMIT_CLOSE to false), closer.asked)
        assertTrue(device.due(t(13, 0), Lang.EN).isEmpty())
    }

    @Test
    fun aStepOnAnUnknownPermitIsATypedInputError() {
        val dir = Files.createTempDirectory("weldguard-permit")
        val device = Device.open(dir.resolve("profile.db").toString())
        val e = assertFailsWith<WeldGuardException.InvalidInput> {
            device.permitStart("no-such-permit", false, null, t(9, 0), Lang.EN)
        }
        assertEquals("permit_store.not_found", e.code)
        assertTrue(device.permitList(null, t(9, 0), Lang.EN).isEmpty())
    }
}
