//! In-workspace `uniffi-bindgen`, so the generator and the runtime in the core never drift apart.
fn main() {
    uniffi::uniffi_bindgen_main()
}
