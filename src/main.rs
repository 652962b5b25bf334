fn main() -> std::process::ExitCode {
    wiform::cli::run()
}
