//! The crate's modules depend on each other one way: the composition root (`node`) imports the
//! parts, no part imports it, and no two parts import each other in a circle
//! (docs: `../shared/ARCHITECTURE.md`, "Dependencies point one way").

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reads src/") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules each top-level module names through `crate::…` (unit tests left out).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src/");
        let first = relative
            .components()
            .next()
            .expect("a path")
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if first == "lib" || first == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("reads a source file");
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        let mut rest = text;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if !name.is_empty() && name != first {
                graph.entry(first.clone()).or_default().insert(name);
            }
        }
        graph.entry(first).or_default();
    }
    graph
}

#[test]
fn no_module_imports_the_composition_root() {
    let graph = imports();
    let importers: Vec<&String> = graph
        .iter()
        .filter(|(module, deps)| *module != "node" && deps.contains("node"))
        .map(|(module, _)| module)
        .collect();
    assert!(
        importers.is_empty(),
        "these modules import `node`; give them the narrow state they need instead: {importers:?}"
    );
}

#[test]
fn modules_import_each_other_one_way() {
    let graph = imports();
    // Depth-first search for a back edge.
    fn visit<'a>(
        module: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| *m == module) {
            let mut circle: Vec<String> = path[at..].iter().map(|m| m.to_string()).collect();
            circle.push(module.to_owned());
            return Some(circle);
        }
        if !done.insert(module) {
            return None;
        }
        path.push(module);
        for dep in graph.get(module).into_iter().flatten() {
            if let Some(circle) = visit(dep, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        let mut path = Vec::new();
        if let Some(circle) = visit(module, &graph, &mut path, &mut done) {
            panic!(
                "modules import each other in a circle: {}",
                circle.join(" → ")
            );
        }
    }
}
