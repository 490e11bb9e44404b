// The person's key in the Secure Enclave (CryptoKit `SecureEnclave.P256.Signing`): ES256, the
// private key never leaves the chip; the core gets the compressed public key and 64-byte raw
// signatures. Steps that require the person's presence (a permit's approval or rejection) are
// signed only after LocalAuthentication verified the owner (biometry or passcode), and only then
// is `userPresent` reported. The same key is the device key (credential presentations, token
// refresh), so one public key is enrolled.
#if canImport(CryptoKit) && canImport(LocalAuthentication)
    import CryptoKit
    import Foundation
    import LocalAuthentication
    import WeldGuard

    public final class SecureEnclaveSigner: PersonSigner, DeviceKey, @unchecked Sendable {
        private let key: SecureEnclave.P256.Signing.PrivateKey
        private let reason: @Sendable (SignPurpose) -> String

        /// A new key in the Secure Enclave; keep `dataRepresentation` (an encrypted handle usable
        /// only on this device) in the Keychain and restore it with `init(dataRepresentation:)`.
        /// `reason` words the presence prompt for a purpose, in the app language.
        public init(reason: @escaping @Sendable (SignPurpose) -> String) throws {
            guard SecureEnclave.isAvailable else {
                throw WeldGuardError.Signing(
                    code: "signer.unavailable", messageZh: "本机没有安全隔区，无法保存签名密钥",
                    messageEn: "This device has no Secure Enclave for the signing key")
            }
            var error: Unmanaged<CFError>?
            guard
                let access = SecAccessControlCreateWithFlags(
                    nil, kSecAttrAccessibleWhenUnlockedThisDeviceOnly, .privateKeyUsage, &error)
            else {
                throw WeldGuardError.Signing(
                    code: "signer.access", messageZh: "无法设置密钥访问控制",
                    messageEn: "The key's access control cannot be set")
            }
            key = try SecureEnclave.P256.Signing.PrivateKey(accessControl: access)
            self.reason = reason
        }

        /// The key saved earlier (its `dataRepresentation`).
        public init(dataRepresentation: Data, reason: @escaping @Sendable (SignPurpose) -> String)
            throws
        {
            key = try SecureEnclave.P256.Signing.PrivateKey(dataRepresentation: dataRepresentation)
            self.reason = reason
        }

        /// The handle to keep in the Keychain.
        public var dataRepresentation: Data { key.dataRepresentation }

        public func publicKey() -> Data {
            key.publicKey.compressedRepresentation
        }

        public func sign(request: SignRequest) throws -> SignedBytes {
            var present = false
            if request.requirePresence {
                try verifyPresence(reason(request.purpose))
                present = true
            }
            return SignedBytes(signature: try sign(message: request.message), userPresent: present)
        }

        public func sign(message: Data) throws -> Data {
            do {
                return try key.signature(for: message).rawRepresentation
            } catch {
                throw WeldGuardError.Signing(
                    code: "signer.failed", messageZh: "安全隔区签名失败：\(error)",
                    messageEn: "The Secure Enclave could not sign: \(error)")
            }
        }

        /// Ask for the owner (biometry, or the passcode); the core calls `sign` off the main
        /// thread, so waiting here blocks no screen.
        private func verifyPresence(_ prompt: String) throws {
            let context = LAContext()
            let done = DispatchSemaphore(value: 0)
            let result = LockedResult()
            context.evaluatePolicy(.deviceOwnerAuthentication, localizedReason: prompt) { ok, error in
                result.set(ok, error)
                done.signal()
            }
            done.wait()
            let (ok, error) = result.get()
            guard ok else {
                throw WeldGuardError.Signing(
                    code: "signer.presence_refused",
                    messageZh: "未通过本人验证：\(error.map { "\($0)" } ?? "已取消")",
                    messageEn: "The owner was not verified: \(error.map { "\($0)" } ?? "cancelled")")
            }
        }
    }

    private final class LockedResult: @unchecked Sendable {
        private let lock = NSLock()
        private var ok = false
        private var error: (any Error)?
        func set(_ ok: Bool, _ error: (any Error)?) {
            lock.lock()
            self.ok = ok
            self.error = error
            lock.unlock()
        }
        func get() -> (Bool, (any Error)?) {
            lock.lock()
            defer { lock.unlock() }
            return (ok, error)
        }
    }
#endif
