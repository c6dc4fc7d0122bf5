#![no_main]

use std::sync::Once;

use libfuzzer_sys::fuzz_target;

static HOOK: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    // libfuzzer-sys aborts on any panic, even one caught by `catch_unwind`. ipcscope deliberately
    // catches panics of the third-party evtx crate (`ingest::evtx` turns them into a warning), so
    // restore the default hook here: a panic that escapes `for_each_event_in_bytes` still reaches
    // libfuzzer-sys's own `catch_unwind` around this closure and aborts the run as a crash.
    HOOK.call_once(|| {
        let _ = std::panic::take_hook();
        if std::env::var_os("IPCSCOPE_FUZZ_EVTX_STRICT").is_some() {
            // Strict mode: report panics inside the evtx crate too.
            std::panic::set_hook(Box::new(|info| {
                eprintln!("{info}");
                std::process::abort();
            }));
        } else {
            std::panic::set_hook(Box::new(|_| {}));
        }
    });
    ipcscope_parsers::entry::evtx(data);
});
