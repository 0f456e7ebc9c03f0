//! Interpreters started ahead of their runs (`RunSpec::prestart`, the registry's
//! `[runtime.prestart]`): a run served by one behaves exactly as a run that starts its command,
//! inside the same isolation; a run it was not started for never gets it; and nothing an
//! earlier run does can reach it.

mod common;

use common::{ready_executor, run_on};
use integr8s_core::ports::executor::{RunControl, RunOutcome, RunReport, RunSpec};
use integr8s_core::runtime::RuntimeRegistry;
use integr8s_sandbox::{LocalExecutor, SandboxConfig};

/// One slot, so consecutive runs share a sandbox (and a run finds what the previous one left
/// for it).
async fn one_slot_executor(uid_base: u32) -> LocalExecutor {
    ready_executor(SandboxConfig {
        uid_base,
        max_concurrent: 1,
        ..SandboxConfig::default()
    })
    .await
}

/// A Python run as the registry resolves it (with its prestart command).
fn python(script: &str) -> RunSpec {
    python_version("3.11", script)
}

fn python_version(version: &str, script: &str) -> RunSpec {
    resolved("python", version, script)
}

/// A run of `lang` as the registry resolves it (with its prestart command).
fn resolved(lang: &str, version: &str, script: &str) -> RunSpec {
    let mut registry = RuntimeRegistry::embedded();
    registry.probe_host();
    let runtime = registry
        .resolve(lang, version)
        .unwrap_or_else(|e| panic!("{e} (run scripts/install-deps.sh)"));
    assert!(runtime.prestart.is_some(), "{lang} has a prestart command");
    let mut spec = common::spec(&runtime.file_name, script, &[]);
    spec.command = runtime.command;
    spec.env = runtime.env;
    spec.prestart = runtime.prestart;
    spec
}

/// The same run without a prestart command: it always starts its command.
fn cold(spec: &RunSpec) -> RunSpec {
    RunSpec {
        prestart: None,
        ..spec.clone()
    }
}

/// Prints whether the interpreter running it was started ahead (its command line is the
/// prestart one, `python -I -c CODE FILE`).
const STARTED_AHEAD: &str = "import sys\n\
    args = open('/proc/self/cmdline', 'rb').read().split(b'\\0')\n\
    print('ahead' if args[2] == b'-c' else 'cold', sys.argv)\n";

async fn run(executor: &LocalExecutor, spec: &RunSpec) -> RunReport {
    run_on(executor, spec, RunControl::default()).await
}

fn same_run(warm: &RunReport, cold: &RunReport, what: &str) {
    assert_eq!(warm.outcome, cold.outcome, "{what}: {warm:?} vs {cold:?}");
    assert_eq!(warm.stdout, cold.stdout, "{what}: stdout");
    assert_eq!(warm.stderr, cold.stderr, "{what}: stderr");
    assert_eq!(warm.output_truncated, cold.output_truncated, "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_served_by_an_interpreter_started_ahead_is_the_run_its_command_would_be() {
    let executor = one_slot_executor(394_000).await;
    // The same runs where nothing is ever started ahead.
    let without = ready_executor(SandboxConfig {
        uid_base: 394_050,
        max_concurrent: 1,
        prestart: false,
        ..SandboxConfig::default()
    })
    .await;
    let probes: &[(&str, &str, Option<&str>)] = &[
        (
            "what the script sees of itself",
            "import sys\n\
             print(sorted(globals()), __name__, __file__, __doc__, __package__, __spec__, __cached__)\n\
             print(type(__loader__).__name__, __loader__.name, __loader__.path, __annotations__)\n\
             print(sys.argv, sys.orig_argv[1:], sys.path, sys.flags)\n\
             print(sorted(sys.modules))\n\
             print(sys.stdin.isatty(), sys.stdout.line_buffering, sys.stdout.encoding, sys.stderr.errors)\n",
            None,
        ),
        (
            "where and as whom it runs, under which restrictions",
            "import os\n\
             print(os.getcwd(), os.getpid(), os.getppid(), os.getuid(), os.getgid(), os.getgroups())\n\
             status = open('/proc/self/status').read().splitlines()\n\
             keep = ('Uid', 'Gid', 'Groups', 'Cap', 'NoNewPrivs', 'Seccomp', 'NSpid')\n\
             print([l for l in status if l.startswith(keep)])\n\
             print(sorted(os.listdir('/proc/self/fd')), sorted(os.listdir('/tmp')), sorted(os.listdir('/work')))\n\
             print({k: v for k, v in os.environ.items()})\n\
             import resource\n\
             print([resource.getrlimit(r) for r in (resource.RLIMIT_CPU, resource.RLIMIT_AS, resource.RLIMIT_NPROC, resource.RLIMIT_NOFILE)])\n\
             print(sorted(p for p in os.listdir('/proc') if p.isdigit()))\n",
            None,
        ),
        ("its standard input", "import sys\nprint(repr(sys.stdin.read()))\n", Some("line one\nline two\n")),
        (
            "an uncaught exception",
            "def f():\n    raise ValueError('bad')\ntry:\n    1 / 0\nexcept ZeroDivisionError:\n    f()\n",
            None,
        ),
        ("a syntax error", "print('a'\nx = (\n", None),
        ("an exit code", "import sys\nprint('out')\nsys.exit(3)\n", None),
        ("an exit message", "import sys\nsys.exit('leaving')\n", None),
        (
            "output on both streams, unflushed at exit",
            "import sys\nsys.stdout.write('é' * 10)\nsys.stderr.write('warn\\n')\nprint(end='tail')\n",
            None,
        ),
        (
            "threads and exit handlers",
            "import atexit, threading\natexit.register(lambda: print('bye'))\n\
             t = threading.Thread(target=lambda: print('thread'))\nt.start()\nprint('main')\n",
            None,
        ),
        (
            "a module-level return of frames",
            "import sys, traceback\nprint(sys._getframe().f_code.co_filename)\ntraceback.print_stack()\n",
            None,
        ),
    ];
    // The first run of a slot has nothing started ahead; every later Python run of the same
    // kind does (the standard input is not part of what it was started for).
    run(&executor, &python("pass\n")).await;
    for (what, script, stdin) in probes {
        let mut spec = python(script);
        spec.stdin = stdin.map(str::to_owned);
        let warm = run(&executor, &spec).await;
        let cold_report = run(&without, &spec).await;
        if *what == "a module-level return of frames" {
            // The one thing that differs: the program that waited for the script is a frame
            // below it (tracebacks leave it out, a stack walk sees it).
            assert_eq!(warm.stdout, cold_report.stdout, "{what}");
            assert!(warm.stderr.contains("/work/main.py"), "{warm:?}");
        } else {
            same_run(&warm, &cold_report, what);
        }
    }
    let ahead = run(&executor, &python(STARTED_AHEAD)).await;
    assert_eq!(ahead.stdout, "ahead ['/work/main.py']\n", "{ahead:?}");
    for _ in 0..2 {
        let started = run(&without, &python(STARTED_AHEAD)).await;
        assert_eq!(started.stdout, "cold ['/work/main.py']\n", "{started:?}");
    }
    // A run without a prestart command starts its command even where one waits.
    let started = run(&executor, &cold(&python(STARTED_AHEAD))).await;
    assert_eq!(started.stdout, "cold ['/work/main.py']\n", "{started:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_run_exactly_like_the_one_it_was_started_for_gets_the_interpreter() {
    let executor = one_slot_executor(394_100).await;
    let probe = python(STARTED_AHEAD);
    run(&executor, &probe).await;
    assert!(run(&executor, &probe).await.stdout.starts_with("ahead"));
    // Another language: its own command runs (the waiting Python is killed).
    let bash = common::spec(
        "main.sh",
        "echo from bash; ps -e -o comm= 2>/dev/null | sort",
        &["/bin/bash", "main.sh"],
    );
    let report = run(&executor, &bash).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert!(report.stdout.starts_with("from bash\n"), "{report:?}");
    assert!(
        !report.stdout.contains("python"),
        "the interpreter started ahead is gone: {report:?}"
    );
    // After a run without a prestart command nothing waits: the next Python run starts cold,
    // and leaves one for the run after it.
    assert!(run(&executor, &probe).await.stdout.starts_with("cold"));
    assert!(run(&executor, &probe).await.stdout.starts_with("ahead"));
    // Nothing of the killed interpreter reaches the run that found it: no descriptor beyond
    // the standard streams (3 is `ls`'s own directory).
    let fds = common::spec(
        "main.sh",
        "ls /proc/self/fd | tr '\\n' ' '",
        &["/bin/bash", "main.sh"],
    );
    let report = run(&executor, &fds).await;
    assert_eq!(report.stdout, "0 1 2 3 ", "{report:?}");
    assert!(run(&executor, &probe).await.stdout.starts_with("cold"));
    assert!(run(&executor, &probe).await.stdout.starts_with("ahead"));
    // Another environment or other limits: not the run the interpreter was started for.
    let mut other_env = probe.clone();
    other_env.env.push(("EXTRA".into(), "1".into()));
    assert!(run(&executor, &other_env).await.stdout.starts_with("cold"));
    assert!(run(&executor, &probe).await.stdout.starts_with("cold"));
    let mut other_limits = probe.clone();
    other_limits.limits.timeout_seconds += 1;
    assert!(run(&executor, &other_limits)
        .await
        .stdout
        .starts_with("cold"));
    assert!(run(&executor, &other_limits)
        .await
        .stdout
        .starts_with("ahead"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_memory_limit_the_waiting_interpreter_exceeds_starts_without_it() {
    let executor = one_slot_executor(394_200).await;
    let mut small = common::spec("main.sh", "echo small", &["/bin/bash", "main.sh"]);
    small.limits.memory_bytes = 6 * 1024 * 1024;
    // Without anything waiting, the run fits.
    let alone = run(&executor, &small).await;
    assert_eq!(alone.stdout, "small\n", "{alone:?}");
    let probe = python(STARTED_AHEAD);
    run(&executor, &probe).await;
    // A Python interpreter now waits in the slot, holding more than 6 MiB.
    let after = run(&executor, &small).await;
    assert_eq!(after.outcome, alone.outcome, "{after:?}");
    assert_eq!(after.stdout, "small\n", "{after:?}");
}

/// The interpreter a run finds was started after the previous run was over, in the new run's
/// own namespaces and file systems: whatever the previous run tried, it finds nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_an_earlier_run_does_reaches_the_interpreter_started_for_the_next() {
    let executor = one_slot_executor(394_300).await;
    run(&executor, &python("pass\n")).await;
    let attacker = python(
        "import os, signal, subprocess, time\n\
         for d in ('/tmp', '/work', '/dev/shm'):\n\
         \x20   try:\n\
         \x20       open(d + '/planted.py', 'w').write('print(\"planted\")')\n\
         \x20   except OSError:\n\
         \x20       pass\n\
         os.environ['PYTHONSTARTUP'] = '/tmp/planted.py'\n\
         # A process that keeps trying to reach every other process, and outlive the run.\n\
         code = 'import os, signal, time\\n' \\\n\
         \x20      'os.setsid()\\n' \\\n\
         \x20      'while True:\\n' \\\n\
         \x20      '    for p in os.listdir(\"/proc\"):\\n' \\\n\
         \x20      '        if p.isdigit() and int(p) != os.getpid():\\n' \\\n\
         \x20      '            try: os.kill(int(p), signal.SIGSTOP)\\n' \\\n\
         \x20      '            except OSError: pass\\n' \\\n\
         \x20      '    time.sleep(0.01)\\n'\n\
         subprocess.Popen(['/usr/bin/python3', '-c', code], start_new_session=True)\n\
         time.sleep(0.2)\n\
         print('planted')\n",
    );
    let planted = run(&executor, &attacker).await;
    assert_eq!(planted.stdout, "planted\n", "{planted:?}");
    let looker = python(
        "import os, sys\n\
         args = open('/proc/self/cmdline', 'rb').read().split(b'\\0')\n\
         print('ahead' if args[2] == b'-c' else 'cold')\n\
         print(sorted(os.listdir('/tmp')), sorted(os.listdir('/work')), sorted(os.listdir('/dev/shm')))\n\
         print(sorted(p for p in os.listdir('/proc') if p.isdigit()))\n\
         print(open('/proc/self/status').read().split('State:')[1].split()[0])\n\
         print('PYTHONSTARTUP' in os.environ)\n",
    );
    let seen = run(&executor, &looker).await;
    assert_eq!(seen.outcome, RunOutcome::Exited { code: 0 }, "{seen:?}");
    // Pid 1 is the run's init, 2 the interpreter; nothing of the earlier run is there.
    assert_eq!(
        seen.stdout, "ahead\n[] ['main.py'] []\n['1', '2']\nR\nFalse\n",
        "{seen:?}"
    );
}

/// Every Python version of the registry that is installed here runs a script through its
/// interpreter started ahead, with the same result as without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_installed_python_version_runs_through_its_interpreter_started_ahead() {
    let executor = one_slot_executor(394_500).await;
    let mut registry = RuntimeRegistry::embedded();
    registry.probe_host();
    let script = "import sys\n\
        args = open('/proc/self/cmdline', 'rb').read().split(b'\\0')\n\
        print('ahead' if args[2] == b'-c' else 'cold', sys.version_info[:2], sys.argv, __name__)\n\
        raise SystemExit(sum(map(int, sys.stdin.read().split())))\n";
    let mut tried = 0;
    for version in ["3.11", "3.12", "3.13"] {
        if registry.resolve("python", version).is_err() {
            continue;
        }
        tried += 1;
        let mut spec = python_version(version, script);
        spec.stdin = Some("2 3".into());
        let first = run(&executor, &spec).await;
        let second = run(&executor, &spec).await;
        let (major, minor) = version.split_once('.').unwrap();
        let expected = |how: &str| format!("{how} ({major}, {minor}) ['/work/main.py'] __main__\n");
        assert_eq!(first.stdout, expected("cold"), "{version}: {first:?}");
        assert_eq!(second.stdout, expected("ahead"), "{version}: {second:?}");
        assert_eq!(second.outcome, RunOutcome::Exited { code: 5 }, "{second:?}");
        assert_eq!(second.outcome, first.outcome);
    }
    assert!(tried >= 1, "no Python of the registry is installed");
}

/// Runs of different kinds at once on shared slots, each finding whatever the slot's last run
/// left waiting (an interpreter of its kind, of another kind, or none): every run's own output,
/// on both streams, and nothing else. (This also caught output written just before the shim's
/// report being missed by the supervisor.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_runs_on_shared_slots_each_get_their_own_output() {
    let executor = std::sync::Arc::new(
        ready_executor(SandboxConfig {
            uid_base: 394_700,
            max_concurrent: 3,
            ..SandboxConfig::default()
        })
        .await,
    );
    let mut tasks = Vec::new();
    for worker in 0..3 {
        let executor = executor.clone();
        tasks.push(tokio::spawn(async move {
            let mut wrong = Vec::new();
            for i in 0..40 {
                let marker = format!("m-{worker}-{i}");
                let spec = if (i + worker) % 3 == 2 {
                    common::bash(&format!("echo {marker}; echo e{marker} >&2"))
                } else {
                    python(&format!(
                        "import sys\nprint('{marker}')\nsys.stderr.write('e{marker}\\n')\n"
                    ))
                };
                let report = run(&executor, &spec).await;
                if report.stdout != format!("{marker}\n")
                    || report.stderr != format!("e{marker}\n")
                    || report.outcome != (RunOutcome::Exited { code: 0 })
                {
                    wrong.push(format!("{i} {:?}: {report:?}", spec.command));
                }
            }
            wrong
        }));
    }
    let mut wrong = Vec::new();
    for task in tasks {
        wrong.extend(task.await.expect("task"));
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Ruby's interpreter started ahead (`ruby -e CODE FILE`) runs a script as `ruby FILE` would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ruby_run_served_by_an_interpreter_started_ahead_is_the_run_its_command_would_be() {
    let executor = one_slot_executor(394_800).await;
    let without = ready_executor(SandboxConfig {
        uid_base: 394_850,
        max_concurrent: 1,
        prestart: false,
        ..SandboxConfig::default()
    })
    .await;
    let ruby = |script: &str| resolved("ruby", "3.1", script);
    let probes: &[(&str, &str, Option<&str>)] = &[
        (
            "what the script sees of itself",
            "puts __FILE__, $0, $PROGRAM_NAME, ARGV.inspect, __dir__, local_variables.inspect\n\
             puts self.inspect, $stdout.tty?, $stdout.sync, STDOUT.fileno, Encoding.default_external\n\
             puts Dir.pwd, Process.pid, Process.ppid, Process.uid, ENV.to_h.sort.inspect\n\
             puts Dir.children('/proc/self/fd').sort.inspect, Dir.children('/tmp').inspect\n\
             puts File.read('/proc/self/status').lines.grep(/^(Cap|NoNewPrivs|Seccomp|Uid)/).join\n",
            None,
        ),
        ("its standard input", "p $stdin.read", Some("one\ntwo\n")),
        (
            "an uncaught exception",
            "def f = raise(ArgumentError, 'bad')\nbegin\n  1 / 0\nrescue ZeroDivisionError\n  f\nend\n",
            None,
        ),
        ("a syntax error", "puts 'a'\ndef x(\n", None),
        ("an exit code", "puts 'out'\nexit 3\n", None),
        ("abort", "abort('leaving')\n", None),
        ("exit handlers", "at_exit { puts 'bye' }\n$stdout.write('é' * 3)\n", None),
        ("data after __END__", "puts DATA.read\n__END__\ndata line\n", None),
        ("a BEGIN block", "BEGIN { puts 'first' }\nputs 'then'\n", None),
        ("a magic comment", "# frozen_string_literal: true\ns = 'x'\nputs s.frozen?\n", None),
    ];
    run(&executor, &ruby("nil\n")).await;
    for (what, script, stdin) in probes {
        let mut spec = ruby(script);
        spec.stdin = stdin.map(str::to_owned);
        let ahead = run(&executor, &spec).await;
        let started = run(&without, &spec).await;
        same_run(&ahead, &started, what);
    }
    // Served ahead: Ruby wrote the script's name over its own command line when `$0` was set.
    let probe = ruby("puts File.read('/proc/self/cmdline').split(\"\\0\")[0]\n");
    assert_eq!(run(&executor, &probe).await.stdout, "/work/main.rb\n");
    assert_eq!(run(&without, &probe).await.stdout, "/usr/bin/ruby\n");
}
