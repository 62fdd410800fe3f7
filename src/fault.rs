//! Fault injection for the test suites: with the `fault-injection` feature, `point(name)` panics
//! when `APMNET_FAULT` names it, so the tests can prove that a panic inside an operation
//! completes that operation with APM_E_INTERNAL and nothing else. Without the feature (every
//! build but the C harness's) it compiles to nothing.
//!
//! `APMNET_FAULT=name@n[,name@n...]`: the n-th time (1-based, process-wide) the point `name` is
//! reached it panics; `name` alone panics every time.

#[cfg(feature = "fault-injection")]
pub fn point(name: &str) {
    use parking_lot::Mutex;
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static PLAN: OnceLock<Vec<(String, Option<u64>)>> = OnceLock::new();
    static HITS: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);
    let plan = PLAN.get_or_init(|| {
        std::env::var("APMNET_FAULT")
            .unwrap_or_default()
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('@') {
                Some((n, at)) => (n.to_string(), at.parse().ok()),
                None => (p.to_string(), None),
            })
            .collect()
    });
    let Some((_, at)) = plan.iter().find(|(n, _)| n == name) else { return };
    let hit = {
        let mut hits = HITS.lock();
        let count = hits.get_or_insert_with(HashMap::new).entry(name.to_string()).or_insert(0);
        *count += 1;
        *count
    };
    if at.map_or(true, |n| n == hit) {
        panic!("apmnet: fault injected at {name} (hit {hit})");
    }
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_name: &str) {}
