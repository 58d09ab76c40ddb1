//! Reading YAML within a budget. Every YAML document the operator and the bundle tool read goes through
//! here (must-gather reads none; kube reads the kubeconfig), so that no input, however hostile, costs more
//! than a known amount of time and memory before it is refused with a message naming the line and the
//! limit.
//!
//! serde_yaml alone is not enough: its repetition limit counts alias jumps, not the nodes they replay (a
//! 60 KB document whose one 200-key anchor is used 20,000 times builds eight million nodes); libyaml checks
//! every open flow collection on every token (`[[[[...` 100,000 deep took 36 s in a debug build); and the parser
//! holds every event of a document in memory before the first value is built.
//!
//! Reading happens in two steps:
//! 1. a pre-scan ([`scan`]), linear in the input, that follows libyaml's tokenizer and refuses input that
//!    is too large, nested too deep, holds too many tokens or documents, or uses an alias where aliases
//!    are refused, before the parser sees it;
//! 2. serde_yaml, with every value passing through a counting deserializer that refuses a document once
//!    its nodes (every use of an alias counting the nodes it repeats) or its depth exceed the budget.
//!
//! This module does no I/O and does not know file names: callers name the file in their own errors.

mod scan;

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, Visitor};

const MIB: usize = 1024 * 1024;

/// What reading may cost. One [`Budget`] can be spent over several inputs read together (a bundle).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// What is read, for messages: "a KedaController".
    pub subject: &'static str,
    /// Most bytes of input.
    pub max_bytes: usize,
    /// Deepest nesting of sequences and mappings. Keep it under 128, serde_yaml's own recursion limit, so
    /// that this module's message is the one a user sees.
    pub max_depth: usize,
    /// Most nodes (scalars, sequences, mappings), every use of an alias counting every node it repeats.
    pub max_nodes: usize,
    /// Most documents.
    pub max_documents: usize,
    /// Whether aliases (`*name`) are accepted.
    pub aliases: bool,
}

impl Limits {
    /// A KedaController given to the operator (`render -f`). The largest one the API server could store
    /// is 1.5 MiB (etcd's default request limit); a real one is a few KiB (the sample has about 40 nodes,
    /// one setting every field of all three components a few hundred). Its deepest path
    /// (`spec.<c>.affinity...matchExpressions[].values[]`) is 12 levels. kubectl expands aliases before
    /// the API server sees a document, so nothing written for the API needs them; refusing them keeps the
    /// cost of a document its size.
    pub const KEDA_CONTROLLER: Limits = Limits {
        subject: "a KedaController",
        max_bytes: 3 * MIB / 2,
        max_depth: 64,
        max_nodes: 10_000,
        max_documents: 16,
        aliases: false,
    };

    /// One Kubernetes manifest file (a CRD, a CSV, the operator's templates, config files). The API
    /// server refuses request bodies over 3 MiB, so no object in a larger file could be created. The
    /// largest file we write, the KedaController CRD, is 216 KB with 8,900 nodes, 29 levels deep
    /// (CRD schemas nest two levels per field); our whole bundle has 22,000 nodes. 150,000 nodes keeps the
    /// worst case, a file of nothing but empty keys (`?`: two nodes from two bytes), at 70 MB while
    /// the parser holds its events.
    pub const MANIFEST: Limits = Limits {
        subject: "a manifest file",
        max_bytes: 3 * MIB,
        max_depth: 100,
        max_nodes: 150_000,
        max_documents: 1_000,
        aliases: true,
    };
}

/// A place in the input, 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// Line.
    pub line: usize,
    /// Column, in characters.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {} column {}", self.line, self.column)
    }
}

/// Why YAML was not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum YamlError {
    /// The input is larger than the budget allows.
    #[error("the input is larger than {}, the limit for {subject}", size(*.limit))]
    TooLarge {
        /// Bytes read (with a shared budget: the total so far).
        bytes: usize,
        /// The limit.
        limit: usize,
        /// What was read.
        subject: &'static str,
    },
    /// Collections nested deeper than the budget allows.
    #[error("{}nesting deeper than {limit} levels, the limit for {subject}", prefix(.at))]
    TooDeep {
        /// Where the limit was crossed.
        at: Option<Location>,
        /// The limit.
        limit: usize,
        /// What was read.
        subject: &'static str,
    },
    /// More nodes than the budget allows.
    #[error("{}more than {limit} nodes, the limit for {subject} (an alias counts every node it repeats)", prefix(.at))]
    TooManyNodes {
        /// Where the limit was crossed.
        at: Option<Location>,
        /// The limit.
        limit: usize,
        /// What was read.
        subject: &'static str,
    },
    /// More documents than the budget allows.
    #[error("{}more than {limit} documents, the limit for {subject}", prefix(.at))]
    TooManyDocuments {
        /// Where the limit was crossed.
        at: Option<Location>,
        /// The limit.
        limit: usize,
        /// What was read.
        subject: &'static str,
    },
    /// An alias where aliases are refused.
    #[error("{at}: YAML aliases (*{name}) are not accepted in {subject}")]
    Alias {
        /// The alias.
        at: Location,
        /// Its anchor's name.
        name: String,
        /// What was read.
        subject: &'static str,
    },
    /// Not YAML, or not the expected shape: serde_yaml's message, which names the line.
    #[error("{message}")]
    Parse {
        /// serde_yaml's message.
        message: String,
        /// Where, when serde_yaml knows.
        at: Option<Location>,
    },
}

impl YamlError {
    /// Where in the input the error is, when known.
    pub fn location(&self) -> Option<Location> {
        match self {
            YamlError::TooLarge { .. } => None,
            YamlError::Alias { at, .. } => Some(*at),
            YamlError::TooDeep { at, .. }
            | YamlError::TooManyNodes { at, .. }
            | YamlError::TooManyDocuments { at, .. }
            | YamlError::Parse { at, .. } => *at,
        }
    }

    fn parse(error: &serde_yaml::Error) -> Self {
        YamlError::Parse { message: error.to_string(), at: error.location().map(location) }
    }
}

fn location(l: serde_yaml::Location) -> Location {
    Location { line: l.line(), column: l.column() }
}

fn prefix(location: &Option<Location>) -> String {
    location.map(|l| format!("{l}: ")).unwrap_or_default()
}

fn size(bytes: usize) -> String {
    let (unit, name) = if bytes >= MIB { (MIB, "MiB") } else { (1024, "KiB") };
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else if bytes.is_multiple_of(unit) {
        format!("{} {name}", bytes / unit)
    } else {
        format!("{:.1} {name}", bytes as f64 / unit as f64)
    }
}

/// Limits and what has been spent of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    limits: Limits,
    bytes: usize,
    nodes: usize,
    documents: usize,
}

impl Budget {
    /// A full budget.
    pub fn new(limits: Limits) -> Self {
        Budget { limits, bytes: 0, nodes: 0, documents: 0 }
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Nodes spent so far.
    pub fn nodes_spent(&self) -> usize {
        self.nodes
    }

    /// Every document of `text`, each as a `T` (an empty document is a null), spending from this budget.
    pub fn documents<T: DeserializeOwned>(&mut self, text: &str) -> Result<Vec<T>, YamlError> {
        self.prescan(text)?;
        let tally = self.tally();
        let mut out = Vec::new();
        // One document at a time, stopping at the first error: serde_yaml's iterator yields a syntax error
        // again and again without moving on.
        for document in serde_yaml::Deserializer::from_str(text) {
            tally.documents.set(tally.documents.get() + 1);
            if tally.documents.get() > tally.documents_left {
                // The pre-scan counts documents as libyaml does; this is the same limit, held again.
                let Limits { subject, max_documents, .. } = self.limits;
                return Err(YamlError::TooManyDocuments { at: None, limit: max_documents, subject });
            }
            let value =
                T::deserialize(Counted { inner: document, tally: &tally, depth: 0 }).map_err(|e| tally.error(&e))?;
            out.push(value);
        }
        self.spend(text, &tally);
        Ok(out)
    }

    /// The one document of `text` as a `T` (an empty text is a null document), as `serde_yaml::from_str`
    /// reads it, spending from this budget.
    pub fn document<T: DeserializeOwned>(&mut self, text: &str) -> Result<T, YamlError> {
        self.prescan(text)?;
        let tally = self.tally();
        tally.documents.set(1);
        let value =
            T::deserialize(Counted { inner: serde_yaml::Deserializer::from_str(text), tally: &tally, depth: 0 })
                .map_err(|e| tally.error(&e))?;
        self.spend(text, &tally);
        Ok(value)
    }

    /// Refuses what is too large, too deep, too long or uses refused aliases, before serde_yaml parses.
    fn prescan(&self, text: &str) -> Result<(), YamlError> {
        let limits = &self.limits;
        let subject = limits.subject;
        let bytes = self.bytes.saturating_add(text.len());
        if bytes > limits.max_bytes {
            return Err(YamlError::TooLarge { bytes, limit: limits.max_bytes, subject });
        }
        let nodes_left = limits.max_nodes.saturating_sub(self.nodes);
        let allowance = scan::Allowance {
            depth: limits.max_depth,
            // A document of N nodes has at most 2N tokens (each node and at most one indicator before it).
            tokens: nodes_left.saturating_mul(2),
            documents: limits.max_documents.saturating_sub(self.documents),
            aliases: limits.aliases,
        };
        scan::scan(text, &allowance).map(drop).map_err(|stop| match stop {
            scan::Stop::Depth(at) => YamlError::TooDeep { at: Some(at), limit: limits.max_depth, subject },
            scan::Stop::Tokens(at) => YamlError::TooManyNodes { at: Some(at), limit: limits.max_nodes, subject },
            scan::Stop::Documents(at) => {
                YamlError::TooManyDocuments { at: Some(at), limit: limits.max_documents, subject }
            }
            scan::Stop::Alias(at, name) => YamlError::Alias { at, name, subject },
        })
    }

    fn tally(&self) -> Tally {
        Tally {
            limits: self.limits,
            nodes_left: self.limits.max_nodes.saturating_sub(self.nodes),
            documents_left: self.limits.max_documents.saturating_sub(self.documents),
            nodes: Cell::new(0),
            documents: Cell::new(0),
            exceeded: Cell::new(None),
        }
    }

    fn spend(&mut self, text: &str, tally: &Tally) {
        self.bytes = self.bytes.saturating_add(text.len());
        self.nodes = self.nodes.saturating_add(tally.nodes.get());
        self.documents = self.documents.saturating_add(tally.documents.get());
    }
}

/// The one document of `text` as a `T`, within `limits`.
pub fn from_str<T: DeserializeOwned>(text: &str, limits: Limits) -> Result<T, YamlError> {
    Budget::new(limits).document(text)
}

/// Every document of `text` as a `T`, within `limits`.
pub fn documents<T: DeserializeOwned>(text: &str, limits: Limits) -> Result<Vec<T>, YamlError> {
    Budget::new(limits).documents(text)
}

/// Which limit the counting deserializer hit (its error travels through serde as a plain message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exceeded {
    Nodes,
    Depth,
}

/// What one read has spent, shared by every level of the counting deserializer.
struct Tally {
    limits: Limits,
    nodes_left: usize,
    documents_left: usize,
    nodes: Cell<usize>,
    documents: Cell<usize>,
    exceeded: Cell<Option<Exceeded>>,
}

impl Tally {
    fn node<E: de::Error>(&self) -> Result<(), E> {
        let nodes = self.nodes.get() + 1;
        self.nodes.set(nodes);
        if nodes > self.nodes_left {
            return Err(self.exceed(Exceeded::Nodes));
        }
        Ok(())
    }

    fn exceed<E: de::Error>(&self, what: Exceeded) -> E {
        self.exceeded.set(Some(what));
        E::custom("the YAML budget is exceeded")
    }

    /// The error for a failed read: the budget's when the counting deserializer stopped it.
    fn error(&self, error: &serde_yaml::Error) -> YamlError {
        let at = error.location().map(location);
        let Limits { subject, max_depth, max_nodes, .. } = self.limits;
        match self.exceeded.get() {
            Some(Exceeded::Nodes) => YamlError::TooManyNodes { at, limit: max_nodes, subject },
            Some(Exceeded::Depth) => YamlError::TooDeep { at, limit: max_depth, subject },
            // serde_yaml stops replaying aliases after 100 jumps per event of the document, which can come
            // before the node limit (nested aliases jump more than they add). serde_yaml 0.9 is frozen, so
            // its message is stable; this one says what it means.
            None if error.to_string() == "repetition limit exceeded" => YamlError::Parse {
                message: format!(
                    "aliases are used too often in {subject} (serde_yaml replays at most 100 aliases per node)"
                ),
                at,
            },
            None => YamlError::parse(error),
        }
    }
}

/// A deserializer that counts every value it hands out and the depth of every collection, and fails once
/// the budget is spent. It wraps serde_yaml's, so an alias, replayed by serde_yaml through the same
/// calls, is counted node by node; values skipped with `IgnoredAny` are not replayed by serde_yaml and
/// cost only their events.
struct Counted<'t, D> {
    inner: D,
    tally: &'t Tally,
    /// Collections around the value.
    depth: usize,
}

/// Wraps a visitor so the values it receives are counted.
struct CountedVisitor<'t, V> {
    inner: V,
    tally: &'t Tally,
    depth: usize,
}

/// Wraps a seed so the value it deserializes is counted.
struct CountedSeed<'t, S> {
    inner: S,
    tally: &'t Tally,
    depth: usize,
}

struct CountedSeq<'t, A> {
    inner: A,
    tally: &'t Tally,
    depth: usize,
}

struct CountedMap<'t, A> {
    inner: A,
    tally: &'t Tally,
    depth: usize,
}

struct CountedEnum<'t, A> {
    inner: A,
    tally: &'t Tally,
    depth: usize,
}

impl<'t, V> CountedVisitor<'t, V> {
    /// The level inside a collection this visitor is given, or an error past the depth limit.
    fn enter<E: de::Error>(&self) -> Result<usize, E> {
        let depth = self.depth + 1;
        if depth > self.tally.limits.max_depth {
            return Err(self.tally.exceed(Exceeded::Depth));
        }
        Ok(depth)
    }
}

macro_rules! counted_methods {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            let visitor = CountedVisitor { inner: visitor, tally: self.tally, depth: self.depth };
            self.inner.$method($($arg,)* visitor)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Counted<'_, D> {
    type Error = D::Error;

    counted_methods! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! counted_scalars {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.tally.node()?;
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for CountedVisitor<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    counted_scalars! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.tally.node()?;
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.tally.node()?;
        self.inner.visit_unit()
    }

    fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<V::Value, D2::Error> {
        // The value inside is the node; it is counted when visited.
        self.inner.visit_some(Counted { inner: d, tally: self.tally, depth: self.depth })
    }

    fn visit_newtype_struct<D2: Deserializer<'de>>(self, d: D2) -> Result<V::Value, D2::Error> {
        self.inner.visit_newtype_struct(Counted { inner: d, tally: self.tally, depth: self.depth })
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.tally.node()?;
        let depth = self.enter()?;
        self.inner.visit_seq(CountedSeq { inner: seq, tally: self.tally, depth })
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.tally.node()?;
        let depth = self.enter()?;
        self.inner.visit_map(CountedMap { inner: map, tally: self.tally, depth })
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        // A tagged node (`!tag value`): the value is counted when its variant is read.
        self.inner.visit_enum(CountedEnum { inner: data, tally: self.tally, depth: self.depth })
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for CountedSeed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Counted { inner: d, tally: self.tally, depth: self.depth })
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for CountedSeq<'_, A> {
    type Error = A::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, A::Error> {
        self.inner.next_element_seed(CountedSeed { inner: seed, tally: self.tally, depth: self.depth })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for CountedMap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(CountedSeed { inner: seed, tally: self.tally, depth: self.depth })
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.inner.next_value_seed(CountedSeed { inner: seed, tally: self.tally, depth: self.depth })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, 't, A: de::EnumAccess<'de>> de::EnumAccess<'de> for CountedEnum<'t, A> {
    type Error = A::Error;
    type Variant = CountedEnum<'t, A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self::Variant), A::Error> {
        // The tag itself is not a node of the document.
        let (value, variant) = self.inner.variant_seed(seed)?;
        Ok((value, CountedEnum { inner: variant, tally: self.tally, depth: self.depth }))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for CountedEnum<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.tally.node()?;
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        self.inner.newtype_variant_seed(CountedSeed { inner: seed, tally: self.tally, depth: self.depth })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.inner.tuple_variant(len, CountedVisitor { inner: visitor, tally: self.tally, depth: self.depth })
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.inner.struct_variant(fields, CountedVisitor { inner: visitor, tally: self.tally, depth: self.depth })
    }
}

#[cfg(test)]
mod tests;
