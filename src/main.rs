mod cli;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = match cli.command {
        Some(cli::Command::Analyze(args)) => match cli::analyze(args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                1
            }
        },
        Some(cli::Command::Frames { file }) => cli::frames(&file).unwrap_or_else(|e| {
            eprintln!("error: {e:#}");
            1
        }),
        None => match ipcscope::gui::run(cli.files) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: cannot open the desktop app: {e:#}\n(for batch analysis: ipcscope analyze FILE... --out DIR)");
                1
            }
        },
    };
    std::process::exit(code);
}
