// The camera's frames for the scanner: the luma (Y) plane of a bi-planar 4:2:0 pixel buffer with
// its bytesPerRow, handed over as is (row padding included), as ffi/src/scan.rs expects. Frames
// arrive on the capture queue; the handler gets them there (the view model's `onFrame` is then
// called from a Task). The plane is copied once, in one block, while the buffer is locked (the
// capture pipeline reuses its buffers, and the scan runs later on another queue); from there it is
// lent to the core without another copy (`scanFrameBuffer`).
#if canImport(AVFoundation) && canImport(CoreVideo)
    import AVFoundation
    import CoreVideo
    import Foundation
    import WeldGuard

    /// One frame's luma plane.
    public struct LumaFrame: Sendable {
        public let luma: Data
        public let width: UInt32
        public let height: UInt32
        public let rowStride: UInt32
    }

    public enum FrameAdapter {
        /// The video output settings that deliver bi-planar 4:2:0 frames.
        public static let videoSettings: [String: Any] = [
            kCVPixelBufferPixelFormatTypeKey as String:
                kCVPixelFormatType_420YpCbCr8BiPlanarFullRange
        ]

        /// Plane 0 of a bi-planar 4:2:0 buffer with its bytesPerRow; `nil` for other formats.
        public static func lumaFrame(from pixelBuffer: CVPixelBuffer) -> LumaFrame? {
            let format = CVPixelBufferGetPixelFormatType(pixelBuffer)
            guard
                format == kCVPixelFormatType_420YpCbCr8BiPlanarFullRange
                    || format == kCVPixelFormatType_420YpCbCr8BiPlanarVideoRange
            else { return nil }
            CVPixelBufferLockBaseAddress(pixelBuffer, .readOnly)
            defer { CVPixelBufferUnlockBaseAddress(pixelBuffer, .readOnly) }
            guard let base = CVPixelBufferGetBaseAddressOfPlane(pixelBuffer, 0) else { return nil }
            let width = CVPixelBufferGetWidthOfPlane(pixelBuffer, 0)
            let height = CVPixelBufferGetHeightOfPlane(pixelBuffer, 0)
            let bytesPerRow = CVPixelBufferGetBytesPerRowOfPlane(pixelBuffer, 0)
            return LumaFrame(
                luma: Data(bytes: base, count: bytesPerRow * height), width: UInt32(width),
                height: UInt32(height), rowStride: UInt32(bytesPerRow))
        }

        public static func lumaFrame(from sampleBuffer: CMSampleBuffer) -> LumaFrame? {
            guard let pixelBuffer = CMSampleBufferGetImageBuffer(sampleBuffer) else { return nil }
            return lumaFrame(from: pixelBuffer)
        }
    }

    /// An `AVCaptureVideoDataOutput` delegate handing each frame's luma plane to `handler`.
    public final class CameraFrameSource: NSObject, AVCaptureVideoDataOutputSampleBufferDelegate,
        @unchecked Sendable
    {
        private let handler: @Sendable (LumaFrame) -> Void

        public init(handler: @escaping @Sendable (LumaFrame) -> Void) {
            self.handler = handler
        }

        /// Attach to `output` (frames late for the scanner are dropped, not queued).
        public func attach(to output: AVCaptureVideoDataOutput, queue: DispatchQueue) {
            output.videoSettings = FrameAdapter.videoSettings
            output.alwaysDiscardsLateVideoFrames = true
            output.setSampleBufferDelegate(self, queue: queue)
        }

        public func captureOutput(
            _ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer,
            from connection: AVCaptureConnection
        ) {
            if let frame = FrameAdapter.lumaFrame(from: sampleBuffer) {
                handler(frame)
            }
        }
    }
#endif
