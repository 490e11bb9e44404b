// Errors as a screen shows them: ONE mapping from anything a call throws to UiError. The FFI's
// WeldGuardException carries a stable code and the core's Chinese and English texts; the mapping
// only picks the text in the app's language.

package org.weldguard.app

import org.weldguard.core.WeldGuardException

/** Which kind of failure, as the FFI sorts them (plus the shell's own). */
enum class UiErrorKind {
    /** The input cannot be used; nothing changed. */
    INVALID_INPUT,

    /** The profile database failed; nothing was half-written. */
    STORAGE,

    /** A sync failed (see [UiError.retryable]). */
    SYNC,

    /** The key store did not sign (or not with the presence the step needs). */
    SIGNING,

    /** Not the core's: the shell's own state (e.g. not enrolled yet), or an error the FFI does
     * not declare (a bug). */
    SHELL,
}

/** An error a screen can show: the stable code, its kind, the text in the app's language. */
data class UiError(
    val code: String,
    val kind: UiErrorKind,
    val message: String,
    val retryable: Boolean,
)

/** A failure of the shell's own state, with its texts in both languages. */
class ShellException(val code: String, val messageZh: String, val messageEn: String) :
    Exception("$code: $messageEn") {
    companion object {
        fun notEnrolled() = ShellException(
            "shell.not_enrolled",
            "本机尚未注册，请先用注册码注册",
            "This phone is not enrolled yet: enrol it with an enrolment code first",
        )

        fun wrongStep(what: String) = ShellException(
            "shell.wrong_step",
            "当前步骤不能执行此操作：$what",
            "This cannot be done at this step: $what",
        )
    }
}

/** The one mapping from a thrown error to what a screen shows. */
fun uiError(error: Throwable, language: AppLanguage): UiError {
    fun pick(zh: String, en: String) = if (language == AppLanguage.ZH) zh else en
    return when (error) {
        is WeldGuardException.InvalidInput ->
            UiError(error.code, UiErrorKind.INVALID_INPUT, pick(error.messageZh, error.messageEn), false)
        is WeldGuardException.Storage ->
            UiError(error.code, UiErrorKind.STORAGE, pick(error.messageZh, error.messageEn), false)
        is WeldGuardException.Sync ->
            UiError(error.code, UiErrorKind.SYNC, pick(error.messageZh, error.messageEn), error.retryable)
        is WeldGuardException.Signing ->
            UiError(error.code, UiErrorKind.SIGNING, pick(error.messageZh, error.messageEn), false)
        is ShellException ->
            UiError(error.code, UiErrorKind.SHELL, pick(error.messageZh, error.messageEn), false)
        else -> UiError(
            "shell.unexpected",
            UiErrorKind.SHELL,
            pick("出现意外错误：${error.javaClass.simpleName}", "Unexpected error: ${error.javaClass.simpleName}"),
            false,
        )
    }
}
