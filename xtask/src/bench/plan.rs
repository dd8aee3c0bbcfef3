//! What to measure: a lab's `bench.toml`, turned into an ordered list of runs.
//!
//! The tool knows no lab by name. The lab that owns the benchmark (the load
//! generator's) declares its servers, series and ratios in its folder; this
//! module finds that file and checks it, so a typo is an error that names the
//! key, not a run that silently measures something else.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::workbook::Workbook;

/// The file a lab declares its benchmark in.
pub const FILE: &str = "bench.toml";

/// `bench.toml`, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchToml {
    /// The package whose binary is the load generator.
    pub generator: String,
    /// Default concurrency levels of a series.
    pub concurrency: Vec<usize>,
    pub seconds: u64,
    pub quick_seconds: u64,
    pub servers: BTreeMap<String, Server>,
    pub series: Vec<Series>,
    #[serde(default)]
    pub ratios: Vec<Ratio>,
}

/// How to start a server: a package's binary or example, or a Go file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub package: Option<String>,
    pub example: Option<String>,
    #[serde(default)]
    pub features: Vec<String>,
    /// A Go file, relative to the lab's folder.
    pub go: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// Which program loads the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    #[default]
    LoadGenerator,
    Wrk,
    Oha,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::LoadGenerator => "load-generator",
            Tool::Wrk => "wrk",
            Tool::Oha => "oha",
        }
    }

    /// The external program, if the tool is one.
    pub fn program(self) -> Option<&'static str> {
        match self {
            Tool::LoadGenerator => None,
            Tool::Wrk => Some("wrk"),
            Tool::Oha => Some("oha"),
        }
    }

    /// How to get it, for the line that says it was skipped.
    pub fn how_to_install(self) -> &'static str {
        match self {
            Tool::LoadGenerator => "",
            Tool::Wrk => "`apt-get install wrk` or `brew install wrk`",
            Tool::Oha => "`cargo install oha` or `brew install oha`",
        }
    }
}

/// One series: a path of a server at several concurrency levels.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    pub name: String,
    pub title: String,
    pub server: String,
    pub path: String,
    #[serde(default)]
    pub tool: Tool,
    #[serde(default)]
    pub args: Vec<String>,
    pub concurrency: Option<Vec<usize>>,
    #[serde(default)]
    pub plot: bool,
}

/// A ratio of two series' requests/s, printed at the end.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ratio {
    pub title: String,
    pub of: String,
    pub to: String,
}

/// The benchmark of the workbook: the file, and the folder of its lab.
#[derive(Debug, Clone)]
pub struct Bench {
    pub toml: BenchToml,
    pub lab_dir: PathBuf,
    pub path: PathBuf,
}

/// One measurement to make.
#[derive(Debug, Clone)]
pub struct Run<'a> {
    pub series: &'a Series,
    pub concurrency: usize,
}

impl Bench {
    /// Finds the one lab with a `bench.toml` and reads it.
    pub fn find(workbook: &Workbook) -> Result<Bench> {
        let (labs, _) = workbook.labs()?;
        let mut found = labs.iter().map(|lab| lab.dir.join(FILE)).filter(|path| path.is_file());
        let Some(path) = found.next() else {
            bail!(
                "no lab declares a benchmark: `cargo xtask bench` reads labs/NN-slug/{FILE} \
                 (see CONTRIBUTING.md)"
            );
        };
        if let Some(other) = found.next() {
            bail!(
                "two labs declare a benchmark ({} and {}); keep one",
                workbook.relative(&path),
                workbook.relative(&other)
            );
        }
        let text = fs::read_to_string(&path)?;
        let toml: BenchToml = toml::from_str(&text)
            .with_context(|| format!("reading {}", workbook.relative(&path)))?;
        let bench =
            Bench { lab_dir: path.parent().expect("a file in a folder").to_path_buf(), toml, path };
        bench.check().with_context(|| format!("in {}", workbook.relative(&bench.path)))?;
        Ok(bench)
    }

    fn check(&self) -> Result<()> {
        for (name, server) in &self.toml.servers {
            ensure!(
                server.package.is_some() != server.go.is_some(),
                "server {name:?} needs exactly one of `package` and `go`"
            );
        }
        for series in &self.toml.series {
            ensure!(
                self.toml.servers.contains_key(&series.server),
                "series {:?} names the server {:?}, which [servers] does not declare",
                series.name,
                series.server
            );
            ensure!(
                series.path.starts_with('/'),
                "series {:?}: path must start with /",
                series.name
            );
        }
        for ratio in &self.toml.ratios {
            for name in [&ratio.of, &ratio.to] {
                ensure!(
                    self.toml.series.iter().any(|s| &s.name == name),
                    "ratio {:?} names the series {name:?}, which is not declared",
                    ratio.title
                );
            }
        }
        Ok(())
    }

    /// Every run, in the file's order, keeping the series named in `only`
    /// (all if empty).
    pub fn runs(&self, only: &[String]) -> Vec<Run<'_>> {
        self.toml
            .series
            .iter()
            .filter(|series| only.is_empty() || only.contains(&series.name))
            .flat_map(|series| {
                let levels = series.concurrency.as_ref().unwrap_or(&self.toml.concurrency);
                levels.iter().map(move |&concurrency| Run { series, concurrency })
            })
            .collect()
    }
}
