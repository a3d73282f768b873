//! The instruction-count regression gate (not an example of the crate's API): checks the counts
//! of `cargo bench --bench instructions` against the limits of `benches/instructions.limits`.
//!
//! ```sh
//! cargo bench --bench instructions -- --output-format=json > target/instructions.jsonl
//! cargo run --example bench_gate -- target/instructions.jsonl benches/instructions.limits
//! ```
//!
//! The first file holds gungraun's JSON summaries, one benchmark a line; the second one rule a
//! line (`<benchmark> <= <baseline> + <instructions>` or `... * <ratio>`, `#` starts a comment).
//! Prints every benchmark's instruction count and every rule's verdict; exits with 1 when a
//! rule is broken or names a benchmark the run did not have, with 2 on unreadable input.

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde_json::Value;

/// How far a benchmark may be from its baseline.
enum Limit {
    /// At most this many instructions more than the baseline.
    Delta(u64),
    /// At most this many times the baseline's instructions.
    Ratio(f64),
}

struct Rule {
    line: usize,
    measured: String,
    baseline: String,
    limit: Limit,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [summaries, limits] = args.as_slice() else {
        eprintln!("usage: bench_gate <instructions.jsonl> <instructions.limits>");
        return ExitCode::from(2);
    };
    let counts = match read_counts(summaries) {
        Ok(counts) if counts.is_empty() => {
            eprintln!("{summaries}: no benchmark summaries");
            return ExitCode::from(2);
        }
        Ok(counts) => counts,
        Err(error) => {
            eprintln!("{summaries}: {error}");
            return ExitCode::from(2);
        }
    };
    let rules = match read_rules(limits) {
        Ok(rules) => rules,
        Err(error) => {
            eprintln!("{limits}: {error}");
            return ExitCode::from(2);
        }
    };

    let width = counts.keys().map(String::len).max().unwrap_or(0);
    println!("instructions per request ({summaries}):");
    for (name, count) in &counts {
        println!("  {name:<width$}  {count:>8}");
    }

    println!("\nlimits ({limits}):");
    let mut failures = 0;
    for rule in &rules {
        let (Some(&measured), Some(&baseline)) =
            (counts.get(&rule.measured), counts.get(&rule.baseline))
        else {
            println!(
                "  FAIL line {}: {} or {} is not in this run",
                rule.line, rule.measured, rule.baseline
            );
            failures += 1;
            continue;
        };
        let delta = measured as i64 - baseline as i64;
        let ratio = measured as f64 / baseline as f64;
        let (holds, limit) = match rule.limit {
            Limit::Delta(max) => (delta <= max as i64, format!("+{max}")),
            Limit::Ratio(max) => (ratio <= max, format!("x{max}")),
        };
        println!(
            "  {} {} = {measured} vs {} = {baseline}: {delta:+} ({ratio:.3}x), limit {limit}",
            if holds { "ok  " } else { "FAIL" },
            rule.measured,
            rule.baseline,
        );
        if !holds {
            failures += 1;
        }
    }
    if failures > 0 {
        println!("\nbench gate: {failures} of {} limits broken", rules.len());
        ExitCode::FAILURE
    } else {
        println!("\nbench gate: all {} limits hold", rules.len());
        ExitCode::SUCCESS
    }
}

/// Each benchmark's instruction count, by `group::function::id`.
fn read_counts(path: &str) -> Result<BTreeMap<String, u64>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut counts = BTreeMap::new();
    for (index, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let summary: Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", index + 1))?;
        let (name, count) = instructions(&summary)
            .ok_or_else(|| format!("line {}: no instruction count", index + 1))?;
        if counts.insert(name.clone(), count).is_some() {
            return Err(format!("{name} appears twice"));
        }
    }
    Ok(counts)
}

/// A summary's name and the new run's callgrind `Ir` (gungraun's summary schema 6: the new
/// value is `Left`, or the first of `Both` when an older run is compared).
fn instructions(summary: &Value) -> Option<(String, u64)> {
    // "instructions::static_auth::bare": the bench target, the group, the function.
    let module_path = summary["module_path"].as_str()?;
    let (_, group_function) = module_path.split_once("::")?;
    let name = match summary["id"].as_str() {
        Some(id) => format!("{group_function}::{id}"),
        None => group_function.to_owned(),
    };
    let profile = summary["profiles"]
        .as_array()?
        .iter()
        .find(|p| p["tool"] == "Callgrind")?;
    let metrics = &profile["summaries"]["total"]["summary"]["Callgrind"]["Ir"]["metrics"];
    let new = metrics
        .get("Left")
        .or_else(|| metrics.get("Both").and_then(|both| both.get(0)))?;
    Some((name, new["Int"].as_u64()?))
}

fn read_rules(path: &str) -> Result<Vec<Rule>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut rules = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = || {
            format!(
                "line {}: expected `<benchmark> <= <baseline> + N` or `* R`",
                index + 1
            )
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let [measured, "<=", baseline, op, value] = words.as_slice() else {
            return Err(bad());
        };
        let limit = match *op {
            "+" => Limit::Delta(value.parse().map_err(|_| bad())?),
            "*" => Limit::Ratio(value.parse().map_err(|_| bad())?),
            _ => return Err(bad()),
        };
        rules.push(Rule {
            line: index + 1,
            measured: (*measured).to_owned(),
            baseline: (*baseline).to_owned(),
            limit,
        });
    }
    if rules.is_empty() {
        return Err("no rules".to_owned());
    }
    Ok(rules)
}
