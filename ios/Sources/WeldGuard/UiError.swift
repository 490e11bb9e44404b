// UiError: what a screen shows of any error. The ONE mapping from a thrown error (the generated
// `WeldGuardError`, the shell's `SessionError`, anything else) to a code, a kind, a message in the
// app language (the core's own text) and whether trying again may help.
import Foundation

/// The kind of error, as the screens sort them.
public enum UiErrorKind: String, Sendable, Equatable {
    case invalidInput
    case storage
    case sync
    case signing
    /// Not the core's: a shell condition or an unexpected error.
    case shell
}

/// An error as a screen shows it.
public struct UiError: Error, Sendable, Equatable {
    public let code: String
    public let kind: UiErrorKind
    /// In the app language.
    public let message: String
    public let retryable: Bool

    public init(code: String, kind: UiErrorKind, message: String, retryable: Bool) {
        self.code = code
        self.kind = kind
        self.message = message
        self.retryable = retryable
    }

    /// Map any thrown error to what the screen shows, in `language`.
    public static func from(_ error: any Error, language: AppLanguage) -> UiError {
        switch error {
        case let ui as UiError:
            return ui
        case let e as WeldGuardError:
            switch e {
            case let .InvalidInput(code, zh, en):
                return UiError(
                    code: code, kind: .invalidInput, message: language.pick(zh: zh, en: en),
                    retryable: false)
            case let .Storage(code, zh, en):
                return UiError(
                    code: code, kind: .storage, message: language.pick(zh: zh, en: en),
                    retryable: false)
            case let .Sync(code, zh, en, retryable):
                return UiError(
                    code: code, kind: .sync, message: language.pick(zh: zh, en: en),
                    retryable: retryable)
            case let .Signing(code, zh, en):
                return UiError(
                    code: code, kind: .signing, message: language.pick(zh: zh, en: en),
                    retryable: false)
            }
        case SessionError.notEnrolled:
            return UiError(
                code: "shell.not_enrolled", kind: .shell,
                message: language.pick(
                    zh: "本机尚未注册，请先用注册码注册",
                    en: "This phone is not enrolled yet: enrol it with an enrolment code first"),
                retryable: false)
        case is CancellationError:
            return UiError(
                code: "shell.cancelled", kind: .shell,
                message: language.pick(zh: "操作已取消", en: "The operation was cancelled"),
                retryable: true)
        default:
            return UiError(
                code: "shell.unexpected", kind: .shell,
                message: language.pick(
                    zh: "出现意外错误：\(error)", en: "Something unexpected failed: \(error)"),
                retryable: false)
        }
    }
}
