// Notifications for what is due (gas analysis validity, re-analysis after an interruption, permit
// expiry, the fire watch after the work, licences): scheduled with WorkManager from the core's due
// list. The texts are the core's, in the app's language; the shell decides nothing about deadlines,
// only when to look again (shortly before the soonest one, and every 15 minutes as a safety net).

package org.weldguard.android

import android.Manifest
import android.app.NotificationChannel
import android.app.NotificationManager
import android.content.Context
import android.content.pm.PackageManager
import android.os.Build
import androidx.core.app.NotificationCompat
import androidx.core.app.NotificationManagerCompat
import androidx.core.content.ContextCompat
import androidx.work.CoroutineWorker
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.ExistingWorkPolicy
import androidx.work.OneTimeWorkRequestBuilder
import androidx.work.PeriodicWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import java.util.concurrent.TimeUnit
import org.weldguard.app.WeldGuardSession
import org.weldguard.core.DueItem
import org.weldguard.core.WeldGuardException

/** Implemented by the app's Application: the session the worker reads the due list from (null
 * before a profile exists). */
interface SessionHolder {
    val session: WeldGuardSession?
}

/** Reads the due list, notifies, and schedules the next look. */
class DeadlineWorker(context: Context, params: WorkerParameters) : CoroutineWorker(context, params) {
    override suspend fun doWork(): Result {
        val session = (applicationContext as? SessionHolder)?.session ?: return Result.success()
        val now = session.now()
        val due = try {
            session.call { due(now, session.lang) }
        } catch (e: WeldGuardException) {
            return Result.retry()
        }
        Deadlines.notify(applicationContext, due, now)
        Deadlines.scheduleNext(applicationContext, due, now)
        return Result.success()
    }
}

object Deadlines {
    private const val CHANNEL = "weldguard-deadlines"
    private const val NEXT = "weldguard-deadlines-next"
    private const val PERIODIC = "weldguard-deadlines-periodic"

    /** How long before a deadline the person is told. */
    const val LEAD_SECONDS: Long = 10 * 60

    /** The safety net: look every 15 minutes (WorkManager's shortest period). */
    fun schedulePeriodic(context: Context) {
        WorkManager.getInstance(context).enqueueUniquePeriodicWork(
            PERIODIC,
            ExistingPeriodicWorkPolicy.KEEP,
            PeriodicWorkRequestBuilder<DeadlineWorker>(15, TimeUnit.MINUTES).build(),
        )
    }

    /** Look again [LEAD_SECONDS] before the soonest deadline still ahead. */
    fun scheduleNext(context: Context, due: List<DueItem>, now: Long) {
        val next = due.filter { !it.overdue && it.dueAt > now }.minOfOrNull { it.dueAt - LEAD_SECONDS } ?: return
        val delay = (next - now).coerceAtLeast(0)
        WorkManager.getInstance(context).enqueueUniqueWork(
            NEXT,
            ExistingWorkPolicy.REPLACE,
            OneTimeWorkRequestBuilder<DeadlineWorker>().setInitialDelay(delay, TimeUnit.SECONDS).build(),
        )
    }

    /** Notify what is overdue or due within [LEAD_SECONDS], one notification per item. */
    fun notify(context: Context, due: List<DueItem>, now: Long) {
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU &&
            ContextCompat.checkSelfPermission(context, Manifest.permission.POST_NOTIFICATIONS) != PackageManager.PERMISSION_GRANTED
        ) {
            return
        }
        ensureChannel(context)
        val manager = NotificationManagerCompat.from(context)
        for (item in due.filter { it.overdue || it.dueAt - now <= LEAD_SECONDS }) {
            val id = "${item.kind}:${item.permitId ?: item.certificateNo}".hashCode()
            val notification = NotificationCompat.Builder(context, CHANNEL)
                .setSmallIcon(android.R.drawable.ic_dialog_alert)
                .setContentTitle(context.getString(if (item.overdue) R.string.wg_due_overdue else R.string.wg_due_soon))
                .setContentText(item.text)
                .setStyle(NotificationCompat.BigTextStyle().bigText(item.text))
                .setPriority(NotificationCompat.PRIORITY_HIGH)
                .setCategory(NotificationCompat.CATEGORY_REMINDER)
                .build()
            manager.notify(id, notification)
        }
    }

    private fun ensureChannel(context: Context) {
        if (Build.VERSION.SDK_INT < Build.VERSION_CODES.O) return
        val channel = NotificationChannel(CHANNEL, context.getString(R.string.wg_due_channel), NotificationManager.IMPORTANCE_HIGH)
        context.getSystemService(NotificationManager::class.java).createNotificationChannel(channel)
    }
}
