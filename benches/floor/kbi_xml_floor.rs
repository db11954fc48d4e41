//! The floor of the KBI import benchmark (benches/kbi_import.sh): read the same XML files with
//! quick-xml's reader and do nothing with the events (no namespaces, no values, no mapping,
//! no output). `kbi_xml_floor FILE|DIR...` prints files, bytes and events.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use quick_xml::events::Event;
use quick_xml::reader::Reader;

fn files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .expect("readable directory")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for entry in entries {
            files(&entry, out);
        }
    } else if path.to_string_lossy().ends_with(".xml") {
        out.push(path.to_path_buf());
    }
}

fn main() {
    let mut list = Vec::new();
    for arg in std::env::args().skip(1) {
        files(Path::new(&arg), &mut list);
    }
    let (mut bytes, mut events) = (0u64, 0u64);
    let mut buf = Vec::with_capacity(4096);
    for path in &list {
        let file = std::fs::File::open(path).expect("readable file");
        let mut reader = Reader::from_reader(BufReader::with_capacity(1 << 18, file));
        loop {
            buf.clear();
            match reader.read_event_into(&mut buf) {
                Ok(Event::Eof) => break,
                Ok(_) => events += 1,
                Err(e) => panic!("{}: {e}", path.display()),
            }
        }
        bytes += reader.buffer_position();
    }
    println!("files {} bytes {bytes} events {events}", list.len());
}
