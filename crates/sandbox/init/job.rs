//! The job a waiting init shim receives: what to run, written by the supervisor into the
//! run's job pipe (sent to the shim with the run's other pipes, see fdpass.rs) when the run
//! is released, read by the shim to end-of-file.
//!
//! Shared source: compiled into the shim (parser) and into the sandbox library (encoder and
//! tests), standard library only.
//!
//! The encoding is a sequence of records `TAG LEN\n` followed by LEN raw bytes. Tags:
//! `file` (the script's file name, one path component), `script` (its contents), `env`
//! (`KEY=VALUE`, added to the environment), `arg` (the command, one record per argument, in
//! order), `rlimit` (`cpu N`, `as N` or `nproc N`: limits of the script's process), `prestart`
//! (an equivalent of the command that can start before the script exists, one record per
//! argument; see the runtime registry).
//!
//! The same encoding, without a script, is the spec of a **prestart**: the interpreter a
//! waiting run starts ahead of its job. The job uses it when everything but the script is the
//! same (see [`Job::same_run_as`]).

/// A resource limit the shim applies to the script's process before exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rlimit {
    /// Seconds of CPU time per process.
    Cpu(u64),
    /// Bytes of address space.
    AddressSpace(u64),
    /// Processes of the sandbox uid.
    Processes(u64),
}

/// One run for the shim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Job {
    pub file_name: Vec<u8>,
    pub script: Vec<u8>,
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
    pub argv: Vec<Vec<u8>>,
    pub rlimits: Vec<Rlimit>,
    pub prestart: Vec<Vec<u8>>,
}

fn record(out: &mut Vec<u8>, tag: &str, data: &[u8]) {
    out.extend_from_slice(tag.as_bytes());
    out.push(b' ');
    out.extend_from_slice(data.len().to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(data);
}

impl Rlimit {
    fn encode(self) -> String {
        match self {
            Rlimit::Cpu(n) => format!("cpu {n}"),
            Rlimit::AddressSpace(n) => format!("as {n}"),
            Rlimit::Processes(n) => format!("nproc {n}"),
        }
    }

    fn parse(data: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(data).ok()?;
        let (kind, value) = text.split_once(' ')?;
        let value: u64 = value.parse().ok()?;
        match kind {
            "cpu" => Some(Rlimit::Cpu(value)),
            "as" => Some(Rlimit::AddressSpace(value)),
            "nproc" => Some(Rlimit::Processes(value)),
            _ => None,
        }
    }
}

impl Job {
    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.script.len() + 256);
        record(&mut out, "file", &self.file_name);
        record(&mut out, "script", &self.script);
        for (key, value) in &self.env {
            let mut pair = key.clone();
            pair.push(b'=');
            pair.extend_from_slice(value);
            record(&mut out, "env", &pair);
        }
        for arg in &self.argv {
            record(&mut out, "arg", arg);
        }
        for limit in &self.rlimits {
            record(&mut out, "rlimit", limit.encode().as_bytes());
        }
        for arg in &self.prestart {
            record(&mut out, "prestart", arg);
        }
        out
    }

    /// Parses the wire form; `Err` names the first malformed record. A job needs a valid file
    /// name and a non-empty program.
    pub fn parse(mut data: &[u8]) -> Result<Job, String> {
        let mut job = Job::default();
        while !data.is_empty() {
            let line_end = data
                .iter()
                .position(|b| *b == b'\n')
                .ok_or("record header without end of line")?;
            let header = std::str::from_utf8(&data[..line_end]).map_err(|_| "header not UTF-8")?;
            let (tag, len) = header.split_once(' ').ok_or("header without length")?;
            let len: usize = len
                .parse()
                .map_err(|_| format!("bad length in {header:?}"))?;
            let rest = &data[line_end + 1..];
            if rest.len() < len {
                return Err(format!("record {tag} cut short"));
            }
            let (value, tail) = rest.split_at(len);
            data = tail;
            match tag {
                "file" => job.file_name = value.to_vec(),
                "script" => job.script = value.to_vec(),
                "env" => {
                    let eq = value
                        .iter()
                        .position(|b| *b == b'=')
                        .filter(|p| *p > 0)
                        .ok_or("env record without KEY=")?;
                    job.env
                        .push((value[..eq].to_vec(), value[eq + 1..].to_vec()));
                }
                "arg" => job.argv.push(value.to_vec()),
                "rlimit" => job
                    .rlimits
                    .push(Rlimit::parse(value).ok_or("malformed rlimit record")?),
                "prestart" => job.prestart.push(value.to_vec()),
                other => return Err(format!("unknown record {other:?}")),
            }
        }
        let name = &job.file_name;
        if name.is_empty()
            || name == b"."
            || name == b".."
            || name.len() > 255
            || name.iter().any(|b| *b == b'/' || *b == 0)
        {
            return Err("invalid script file name".into());
        }
        let has_nul = |v: &[u8]| v.contains(&0);
        if job.argv.first().is_none_or(|p| p.is_empty())
            || job.argv.iter().chain(&job.prestart).any(|a| has_nul(a))
            || job.env.iter().any(|(k, v)| has_nul(k) || has_nul(v))
        {
            return Err("empty program or NUL byte in the command or environment".into());
        }
        Ok(job)
    }

    /// Whether `self` runs exactly what `prestart` was started for: same command, prestart
    /// command, file name, environment and limits (the script aside).
    pub fn same_run_as(&self, prestart: &Job) -> bool {
        !self.prestart.is_empty()
            && self.prestart == prestart.prestart
            && self.argv == prestart.argv
            && self.file_name == prestart.file_name
            && self.env == prestart.env
            && self.rlimits == prestart.rlimits
    }
}
