// The person's key in the Secure Enclave (CryptoKit `SecureEnclave.P256.Signing`): ES256, the
// private key never leaves the chip; the core gets the compressed public key and 64-byte raw
// signatures. The same key is the device key (credential presentations, token refresh), so one
// public key is enrolled.
//
// Presence is enforced by the chip, not by the app: a key made with `requiresPresence` (an
// approver's phone) carries the access control `.userPresence`, so the Secure Enclave signs with
// it only after the owner passed biometry or the passcode for that very signature (the system
// shows the prompt when `signature(for:)` runs, worded by `reason`). Only such a key reports
// `userPresent`; a key without the requirement always reports `false`, and the core then refuses
// the steps that need presence (`permit.presence_required`, ADR 14). As on Android (KeystoreKey).
#if canImport(CryptoKit) && canImport(LocalAuthentication)
    import CryptoKit
    import Foundation
    import LocalAuthentication
    import WeldGuard

    public final class SecureEnclaveSigner: PersonSigner, DeviceKey, @unchecked Sendable {
        private let handle: Data
        private let requiresPresence: Bool
        private let reason: @Sendable (SignPurpose) -> String

        /// A new key in the Secure Enclave; keep `dataRepresentation` (an encrypted handle usable
        /// only on this device) in the Keychain with `requiresPresence`, and restore it with
        /// `init(dataRepresentation:requiresPresence:reason:)`. `reason` words the presence prompt
        /// for a purpose, in the app language.
        public init(requiresPresence: Bool, reason: @escaping @Sendable (SignPurpose) -> String)
            throws
        {
            guard SecureEnclave.isAvailable else {
                throw WeldGuardError.Signing(
                    code: "signer.unavailable", messageZh: "本机没有安全隔区，无法保存签名密钥",
                    messageEn: "This device has no Secure Enclave for the signing key")
            }
            var flags: SecAccessControlCreateFlags = [.privateKeyUsage]
            if requiresPresence {
                flags.insert(.userPresence)
            }
            var error: Unmanaged<CFError>?
            guard
                let access = SecAccessControlCreateWithFlags(
                    nil, kSecAttrAccessibleWhenUnlockedThisDeviceOnly, flags, &error)
            else {
                throw WeldGuardError.Signing(
                    code: "signer.access", messageZh: "无法设置密钥访问控制",
                    messageEn: "The key's access control cannot be set")
            }
            let key = try SecureEnclave.P256.Signing.PrivateKey(accessControl: access)
            handle = key.dataRepresentation
            self.requiresPresence = requiresPresence
            self.reason = reason
        }

        /// The key saved earlier (its `dataRepresentation` and whether it was made requiring
        /// presence).
        public init(
            dataRepresentation: Data, requiresPresence: Bool,
            reason: @escaping @Sendable (SignPurpose) -> String
        ) throws {
            _ = try SecureEnclave.P256.Signing.PrivateKey(dataRepresentation: dataRepresentation)
            handle = dataRepresentation
            self.requiresPresence = requiresPresence
            self.reason = reason
        }

        /// The handle to keep in the Keychain.
        public var dataRepresentation: Data { handle }

        public func publicKey() -> Data {
            (try? SecureEnclave.P256.Signing.PrivateKey(dataRepresentation: handle))?
                .publicKey.compressedRepresentation ?? Data()
        }

        public func sign(request: SignRequest) throws -> SignedBytes {
            // With `.userPresence` the chip itself asks for the owner on this signature; the
            // context only words the prompt. The core calls `sign` off the main thread, so the
            // prompt's wait blocks no screen.
            let signature = try sign(message: request.message, prompt: reason(request.purpose))
            return SignedBytes(signature: signature, userPresent: requiresPresence)
        }

        public func sign(message: Data) throws -> Data {
            try sign(message: message, prompt: reason(.credentialPresentation))
        }

        private func sign(message: Data, prompt: String) throws -> Data {
            let context = LAContext()
            context.localizedReason = prompt
            do {
                let key = try SecureEnclave.P256.Signing.PrivateKey(
                    dataRepresentation: handle, authenticationContext: context)
                return try key.signature(for: message).rawRepresentation
            } catch {
                throw WeldGuardError.Signing(
                    code: requiresPresence ? "signer.presence_refused" : "signer.failed",
                    messageZh: "安全隔区未签名：\(error)",
                    messageEn: "The Secure Enclave did not sign: \(error)")
            }
        }
    }
#endif
