//! Partitions: the cut set of a [`TestNet`] and the iptables rules that
//! enforce it in each namespace.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::Stdio;

use anyhow::{bail, Context};

use super::{nsenter, TestNet, CHAIN};

impl TestNet {
    fn check_index(&self, i: usize) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=self.hosts.len()).contains(&i),
            "host {i} out of 1..={}",
            self.hosts.len()
        );
        Ok(())
    }

    /// Cuts host `i` off from every other host, both ways. The machine
    /// (`.1`) still reaches it.
    pub fn isolate(&self, i: usize) -> anyhow::Result<()> {
        let others: Vec<usize> = (1..=self.len()).filter(|&j| j != i).collect();
        self.isolate_groups(&[i], &others)
    }

    /// Cuts every host of `a` off from every host of `b`, both ways; hosts
    /// within a group still talk.
    pub fn isolate_groups(&self, a: &[usize], b: &[usize]) -> anyhow::Result<()> {
        for &i in a.iter().chain(b) {
            self.check_index(i)?;
        }
        self.change(|blocked| {
            for &x in a {
                for &y in b {
                    if x != y {
                        blocked.insert((x, y));
                        blocked.insert((y, x));
                    }
                }
            }
        })
    }

    /// One way only: what `from` sends to `to` is lost; `to` still reaches
    /// `from`.
    pub fn block(&self, from: usize, to: usize) -> anyhow::Result<()> {
        self.check_index(from)?;
        self.check_index(to)?;
        self.change(|blocked| {
            if from != to {
                blocked.insert((from, to));
            }
        })
    }

    /// Removes every cut involving host `i`.
    pub fn heal(&self, i: usize) -> anyhow::Result<()> {
        self.check_index(i)?;
        self.change(|blocked| blocked.retain(|&(x, y)| x != i && y != i))
    }

    /// Removes every cut.
    pub fn heal_all(&self) -> anyhow::Result<()> {
        self.change(BTreeSet::clear)
    }

    /// The directed pairs (from, to) currently cut.
    pub fn blocked(&self) -> BTreeSet<(usize, usize)> {
        self.lock_blocked().clone()
    }

    fn lock_blocked(&self) -> std::sync::MutexGuard<'_, BTreeSet<(usize, usize)>> {
        self.blocked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `f` to the cut set and rewrites the chain of every namespace
    /// whose rules changed.
    fn change(&self, f: impl FnOnce(&mut BTreeSet<(usize, usize)>)) -> anyhow::Result<()> {
        let mut blocked = self.lock_blocked();
        let before = blocked.clone();
        f(&mut blocked);
        for to in 1..=self.len() {
            let sources = |set: &BTreeSet<(usize, usize)>| -> Vec<usize> {
                set.iter()
                    .filter(|&&(_, t)| t == to)
                    .map(|&(s, _)| s)
                    .collect()
            };
            let now = sources(&blocked);
            if now == sources(&before) {
                continue;
            }
            let mut rules = format!("*filter\n:{CHAIN} - [0:0]\n");
            for from in now {
                rules.push_str(&format!("-A {CHAIN} -s {}/32 -j DROP\n", self.addr(from)));
            }
            rules.push_str("COMMIT\n");
            if let Err(e) = self.restore(to, &rules) {
                *blocked = before;
                return Err(e);
            }
        }
        Ok(())
    }

    fn restore(&self, i: usize, rules: &str) -> anyhow::Result<()> {
        let mut child = nsenter(self.host(i))
            .args(["iptables-restore", "--noflush"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning iptables-restore")?;
        child
            .stdin
            .take()
            .context("iptables-restore has no stdin")?
            .write_all(rules.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "iptables-restore in {} failed: {}\n{rules}",
                self.netns(i),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}
