//! Reading a labelled corpus folder (shared by `bounce-score`,
//! `bounce-bench` and `tests/corpus.rs`). Layout: `sisimai-dev/` with
//! `sisimai-dev.json`, and `flufl/` with `flufl.json`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use tidings_bounce::scoring::{self, FileScore, FluflLabel, Prediction, SisimaiLabel};

/// One message of the corpus.
pub struct Sample {
    /// `sisimai-dev` or `flufl`.
    pub set: &'static str,
    /// File name.
    pub file: String,
    /// Raw bytes.
    pub bytes: Vec<u8>,
}

/// A corpus folder, loaded.
pub struct Corpus {
    /// Every message, sorted by set then name.
    pub samples: Vec<Sample>,
    /// sisimai-dev labels by file.
    pub sisimai: BTreeMap<String, Vec<SisimaiLabel>>,
    /// flufl labels by file.
    pub flufl: BTreeMap<String, FluflLabel>,
}

fn bad(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Loads `dir`.
pub fn load(dir: &Path) -> io::Result<Corpus> {
    let sisimai =
        scoring::sisimai_labels(&fs::read_to_string(dir.join("sisimai-dev.json"))?).map_err(bad)?;
    let flufl = scoring::flufl_labels(&fs::read_to_string(dir.join("flufl.json"))?)
        .map_err(bad)?
        .into_iter()
        .map(|l| (l.file.clone(), l))
        .collect();
    let mut samples = Vec::new();
    for set in ["sisimai-dev", "flufl"] {
        let mut names: Vec<String> = fs::read_dir(dir.join(set))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for file in names {
            let bytes = fs::read(dir.join(set).join(&file))?;
            samples.push(Sample { set, file, bytes });
        }
    }
    Ok(Corpus {
        samples,
        sisimai,
        flufl,
    })
}

impl Corpus {
    /// Scores every labelled sample with `predict`; unlabelled samples are
    /// skipped.
    pub fn score(&self, mut predict: impl FnMut(&Sample) -> Option<Prediction>) -> Vec<FileScore> {
        let mut out = Vec::new();
        for s in &self.samples {
            let score = match s.set {
                "sisimai-dev" => self
                    .sisimai
                    .get(&s.file)
                    .and_then(|l| predict(s).map(|p| scoring::score_sisimai(&s.file, l, &p))),
                _ => self
                    .flufl
                    .get(&s.file)
                    .and_then(|l| predict(s).map(|p| scoring::score_flufl(l, &p))),
            };
            out.extend(score);
        }
        out
    }
}
