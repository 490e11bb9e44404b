// The Kotlin half of `cargo xtask bench ffi`: the same camera frame and the same scan-to-start
// decision as the Rust half (ffi/benches/ffi.rs), called through the generated bindings and JNA
// as the Android shell calls them. The Rust half wrote the inputs into the fixtures folder; this
// serves the same timing requests (`scan N`, `decide N` on stdin, one line of nanoseconds per
// block on stdout), and xtask alternates blocks between the two halves.
//
//   java -Djna.library.path=LIB -cp … org.weldguard.bench.FfiBenchKt FIXTURES_DIR

package org.weldguard.bench

import java.io.File
import java.nio.ByteBuffer
import java.util.Properties
import kotlin.system.exitProcess
import org.weldguard.core.Device
import org.weldguard.core.ExpectedCodes
import org.weldguard.core.Lang
import org.weldguard.core.ScanMode
import org.weldguard.core.ScanSettings
import org.weldguard.core.scanFrameBuffer
import org.weldguard.core.scanFrameWith

fun main(args: Array<String>) {
    val dir = File(args.singleOrNull() ?: run {
        System.err.println("usage: FfiBench FIXTURES_DIR")
        exitProcess(2)
    })
    val inputs = Properties()
    File(dir, "inputs.properties").reader(Charsets.UTF_8).use { inputs.load(it) }
    fun input(key: String): String = inputs.getProperty(key) ?: run {
        System.err.println("inputs.properties lacks $key")
        exitProcess(1)
    }
    val luma = File(dir, "frame.luma").readBytes()
    val width = input("width").toUInt()
    val height = input("height").toUInt()
    val stride = input("row_stride").toUInt()
    val live = ScanSettings(ScanMode.LIVE, ExpectedCodes.ONE, null)
    val direct = ByteBuffer.allocateDirect(luma.size).put(luma).flip()

    val first = scanFrameWith(luma, width, height, stride, ScanSettings(ScanMode.PHOTO, ExpectedCodes.ONE, null))
    check(first.firstOrNull()?.text == input("text")) { "the frame does not scan back to its text" }
    val device = Device.open(input("kotlin_db"))
    val (machine, welder, site, now) =
        listOf(input("machine"), input("welder"), input("site"), input("now"))

    // Serve timing requests (the protocol is in xtask/src/bench_ffi.rs): the inputs are ready.
    println("ready")
    System.out.flush()
    while (true) {
        val line = readlnOrNull() ?: break
        val parts = line.split(' ')
        val n = parts.getOrNull(1)?.toIntOrNull() ?: continue
        val times = LongArray(n)
        var hits = 0
        for (i in 0 until n) {
            val start = System.nanoTime()
            val hit = when (parts[0]) {
                // The frame as a ByteArray: copied into a RustBuffer, then out of it.
                "scan" -> scanFrameWith(luma, width, height, stride, live).isNotEmpty()
                // The frame in a direct ByteBuffer, as CameraX hands it over: borrowed, no copy.
                "scanbuf" -> scanFrameBuffer(direct, width, height, stride, live).isNotEmpty()
                "decide" -> {
                    val result = device.startWork(machine, welder, site, now.toLong(), null, Lang.EN)
                    check(result.allowed) { "refused: ${result.reasons}" }
                    true
                }
                else -> error("unknown request ${parts[0]}")
            }
            times[i] = System.nanoTime() - start
            if (hit) hits++
        }
        println("${parts[0]} $hits ${times.joinToString(" ")}")
        System.out.flush()
    }
    device.close()
}
