// What every screen shares: the high-contrast theme (sunlight), big touch targets (gloves: at
// least 56 dp, 64 dp for the main action), the error banner, and the scaffold with navigation.

package org.weldguard.app.android.ui

import androidx.compose.foundation.background
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.heightIn
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.Button
import androidx.compose.material3.ButtonDefaults
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Surface
import androidx.compose.material3.Text
import androidx.compose.material3.darkColorScheme
import androidx.compose.runtime.Composable
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.Color
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.text.font.FontWeight
import androidx.compose.ui.unit.dp
import androidx.compose.ui.unit.sp
import org.weldguard.app.UiError
import org.weldguard.app.android.R

val MinTouch = 56.dp
val MainTouch = 64.dp

/** Black, white and safety yellow: readable in sunlight. */
private val HighContrast = darkColorScheme(
    primary = Color(0xFFFFD600),
    onPrimary = Color.Black,
    background = Color.Black,
    onBackground = Color.White,
    surface = Color.Black,
    onSurface = Color.White,
    error = Color(0xFFFF5252),
    onError = Color.Black,
)

val Allowed = Color(0xFF00E676)
val Refused = Color(0xFFFF5252)

@Composable
fun WeldGuardTheme(content: @Composable () -> Unit) {
    MaterialTheme(colorScheme = HighContrast) {
        Surface(modifier = Modifier.fillMaxSize(), color = MaterialTheme.colorScheme.background, content = content)
    }
}

@Composable
fun BigButton(text: String, onClick: () -> Unit, modifier: Modifier = Modifier, enabled: Boolean = true) {
    Button(
        onClick = onClick,
        enabled = enabled,
        modifier = modifier.fillMaxWidth().heightIn(min = MainTouch),
        colors = ButtonDefaults.buttonColors(),
    ) { Text(text, fontSize = 20.sp, fontWeight = FontWeight.Bold) }
}

@Composable
fun SecondButton(text: String, onClick: () -> Unit, modifier: Modifier = Modifier) {
    OutlinedButton(onClick = onClick, modifier = modifier.heightIn(min = MinTouch)) { Text(text, fontSize = 18.sp) }
}

/** The core's message (in the app's language) and its stable code, for support. */
@Composable
fun ErrorBanner(error: UiError?) {
    if (error == null) return
    Column(Modifier.fillMaxWidth().background(MaterialTheme.colorScheme.error).padding(16.dp)) {
        Text(error.message, color = MaterialTheme.colorScheme.onError, fontSize = 18.sp, fontWeight = FontWeight.Bold)
        Text(error.code, color = MaterialTheme.colorScheme.onError, fontSize = 14.sp)
        if (error.retryable) Text(stringResource(R.string.error_retry_later), color = MaterialTheme.colorScheme.onError)
    }
}

@Composable
fun Heading(text: String) {
    Text(text, fontSize = 26.sp, fontWeight = FontWeight.Bold, modifier = Modifier.padding(vertical = 8.dp))
}

enum class Screen { SCAN_TO_START, INSPECTOR_CHECK, PERMIT, SYNC }

/** The role's home screen and sync, two big buttons at the bottom. */
@Composable
fun ShellScaffold(current: Screen, home: Screen, onNavigate: (Screen) -> Unit, content: @Composable () -> Unit) {
    Column(Modifier.fillMaxSize().padding(16.dp)) {
        Column(Modifier.weight(1f)) { content() }
        Row(Modifier.fillMaxWidth(), horizontalArrangement = Arrangement.spacedBy(12.dp)) {
            val homeLabel = when (home) {
                Screen.SCAN_TO_START -> R.string.nav_scan_to_start
                Screen.INSPECTOR_CHECK -> R.string.nav_inspector
                Screen.PERMIT, Screen.SYNC -> R.string.nav_permit
            }
            SecondButton(stringResource(homeLabel), { onNavigate(home) }, Modifier.weight(1f))
            SecondButton(stringResource(R.string.nav_sync), { onNavigate(Screen.SYNC) }, Modifier.weight(1f))
        }
    }
}
