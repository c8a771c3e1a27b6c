//! The data section encoding: control bytes, sizes, integers, maps, arrays and pointers.
//!
//! Everything here follows the spec's "Output Data Section". With de-duplication on, a value
//! written once (a record, a map key, a string, a map or array) is reached through a pointer the
//! next time it is needed; pointers only ever point at a full value, never at another pointer
//! (the spec forbids pointer chains). The metadata is written with de-duplication off: the spec
//! gives pointers no meaning there.

use std::collections::HashMap;

use super::{Record, WriterError};

/// Data types (spec, "Output Data Section"). Types above 7 are "extended": stored as type 0 in
/// the control byte and `type - 7` in the next byte.
const TYPE_POINTER: u8 = 1;
const TYPE_STRING: u8 = 2;
const TYPE_UINT16: u8 = 5;
const TYPE_UINT32: u8 = 6;
const TYPE_MAP: u8 = 7;
const TYPE_UINT64: u8 = 9;
const TYPE_ARRAY: u8 = 11;
const TYPE_EXTENDED_OFFSET: u8 = 7;

/// Payload sizes below 29 fit in the control byte's five low bits; 29, 30 and 31 say that one,
/// two or three more bytes follow, holding the size less these bases (spec, "Payload Size").
const SIZE_ONE_BYTE: usize = 29;
const SIZE_TWO_BYTES: usize = 285;
const SIZE_THREE_BYTES: usize = 65_821;

/// The largest payload (or map/array count) one field can have: 65,821 + 2^24 − 1 (spec,
/// "Payload Size").
pub const FIELD_MAX_SIZE: usize = 16_843_036;

/// Pointer value bases for the sizes 1 and 2; size 3 holds the value as is (spec, "Pointers").
const POINTER_BASE_1: u32 = 2048;
const POINTER_BASE_2: u32 = 526_336;
const POINTER_BASE_3: u32 = 134_744_064;

/// Strings shorter than this are written again rather than pointed at: a pointer takes 2 to 5
/// bytes, so a short string costs no more inline.
const DEDUP_MIN_STRING_BYTES: usize = 4;

/// Writes values into one data section.
pub(super) struct DataWriter<'r> {
    bytes: Vec<u8>,
    dedup: bool,
    /// Offsets of values written in full, by value.
    values: HashMap<&'r Record, u32>,
    /// Offsets of map keys and strings written in full.
    strings: HashMap<&'r str, u32>,
}

impl<'r> DataWriter<'r> {
    pub fn new(dedup: bool) -> DataWriter<'r> {
        DataWriter {
            bytes: Vec::new(),
            dedup,
            values: HashMap::new(),
            strings: HashMap::new(),
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Where `record` starts in the section: written now, or where it was written before.
    pub fn record(&mut self, record: &'r Record) -> Result<u32, WriterError> {
        if let Some(&offset) = self.values.get(record) {
            return Ok(offset);
        }
        let offset = self.offset()?;
        self.value(record)?;
        if self.dedup {
            self.values.insert(record, offset);
        }
        Ok(offset)
    }

    fn offset(&self) -> Result<u32, WriterError> {
        u32::try_from(self.bytes.len()).map_err(|_| WriterError::TooLarge)
    }

    /// Writes `value`, or a pointer to where it already is.
    fn value_or_pointer(&mut self, value: &'r Record) -> Result<(), WriterError> {
        match value {
            Record::String(text) => return self.string_or_pointer(text),
            Record::Map(_) | Record::Array(_) if self.dedup => {
                if let Some(&offset) = self.values.get(value) {
                    self.pointer(offset);
                    return Ok(());
                }
                let offset = self.offset()?;
                self.value(value)?;
                self.values.insert(value, offset);
                return Ok(());
            }
            _ => {}
        }
        self.value(value)
    }

    fn string_or_pointer(&mut self, text: &'r str) -> Result<(), WriterError> {
        if !self.dedup || text.len() < DEDUP_MIN_STRING_BYTES {
            return self.string(text);
        }
        if let Some(&offset) = self.strings.get(text) {
            self.pointer(offset);
            return Ok(());
        }
        let offset = self.offset()?;
        self.string(text)?;
        self.strings.insert(text, offset);
        Ok(())
    }

    /// Writes `value` in full; its parts may be pointers.
    fn value(&mut self, value: &'r Record) -> Result<(), WriterError> {
        match value {
            Record::Map(map) => {
                self.control(TYPE_MAP, map.len(), "map")?;
                for (key, item) in map {
                    self.string_or_pointer(key)?;
                    self.value_or_pointer(item)?;
                }
                Ok(())
            }
            Record::Array(items) => {
                self.control(TYPE_ARRAY, items.len(), "array")?;
                items
                    .iter()
                    .try_for_each(|item| self.value_or_pointer(item))
            }
            Record::String(text) => self.string(text),
            Record::U16(n) => self.unsigned(TYPE_UINT16, u64::from(*n)),
            Record::U32(n) => self.unsigned(TYPE_UINT32, u64::from(*n)),
            Record::U64(n) => self.unsigned(TYPE_UINT64, *n),
        }
    }

    fn string(&mut self, text: &str) -> Result<(), WriterError> {
        self.control(TYPE_STRING, text.len(), "string")?;
        self.bytes.extend_from_slice(text.as_bytes());
        Ok(())
    }

    /// Integers use as few big-endian bytes as their value needs; 0 has none (spec, "integer
    /// formats").
    fn unsigned(&mut self, kind: u8, n: u64) -> Result<(), WriterError> {
        let be = n.to_be_bytes();
        let skip = be.iter().take_while(|&&b| b == 0).count();
        let payload = be.get(skip..).unwrap_or(&[]);
        self.control(kind, payload.len(), "number")?;
        self.bytes.extend_from_slice(payload);
        Ok(())
    }

    /// The control byte, the extended type byte if any, and the size bytes.
    fn control(&mut self, kind: u8, size: usize, what: &'static str) -> Result<(), WriterError> {
        if size > FIELD_MAX_SIZE {
            return Err(WriterError::FieldTooLarge {
                kind: what,
                size,
                max: FIELD_MAX_SIZE,
            });
        }
        let (marker, extra): (u8, Vec<u8>) = if size < SIZE_ONE_BYTE {
            (size as u8, Vec::new())
        } else if size < SIZE_TWO_BYTES {
            (29, vec![(size - SIZE_ONE_BYTE) as u8])
        } else if size < SIZE_THREE_BYTES {
            let rest = (size - SIZE_TWO_BYTES) as u16;
            (30, rest.to_be_bytes().to_vec())
        } else {
            let rest = (size - SIZE_THREE_BYTES) as u32;
            (31, rest.to_be_bytes().get(1..).unwrap_or(&[]).to_vec())
        };
        if kind > TYPE_EXTENDED_OFFSET {
            self.bytes.push(marker);
            self.bytes.push(kind - TYPE_EXTENDED_OFFSET);
        } else {
            self.bytes.push(kind << 5 | marker);
        }
        self.bytes.extend_from_slice(&extra);
        Ok(())
    }

    /// A pointer `001SSVVV` plus 1 to 4 bytes (spec, "Pointers").
    fn pointer(&mut self, offset: u32) {
        let control = TYPE_POINTER << 5;
        if offset < POINTER_BASE_1 {
            let [_, _, b2, b3] = offset.to_be_bytes();
            self.bytes.extend_from_slice(&[control | (b2 & 0x07), b3]);
        } else if offset < POINTER_BASE_2 {
            let [_, b1, b2, b3] = (offset - POINTER_BASE_1).to_be_bytes();
            self.bytes
                .extend_from_slice(&[control | 1 << 3 | (b1 & 0x07), b2, b3]);
        } else if offset < POINTER_BASE_3 {
            let [b0, b1, b2, b3] = (offset - POINTER_BASE_2).to_be_bytes();
            self.bytes
                .extend_from_slice(&[control | 2 << 3 | (b0 & 0x07), b1, b2, b3]);
        } else {
            self.bytes.push(control | 3 << 3);
            self.bytes.extend_from_slice(&offset.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(record: &Record) -> Vec<u8> {
        let mut writer = DataWriter::new(true);
        writer.record(record).unwrap();
        writer.into_bytes()
    }

    #[test]
    fn control_bytes_match_the_spec_examples() {
        // "01000010: UTF-8 string - 2 bytes long".
        assert_eq!(encode(&Record::string("ab")), [0b0100_0010, b'a', b'b']);
        // 80 bytes: 29, then 51 ("01011101 00110011").
        let long = encode(&Record::string("x".repeat(80)));
        assert_eq!(long.get(..2), Some(&[0b0101_1101, 51][..]));
        // 13,392 bytes: 30, then 13,107.
        let longer = encode(&Record::string("x".repeat(13_392)));
        assert_eq!(longer.get(..3), Some(&[0b0101_1110, 0x33, 0x33][..]));
        // 3,421,264 bytes: 31, then 3,355,443.
        let longest = encode(&Record::string("x".repeat(3_421_264)));
        assert_eq!(longest.get(..4), Some(&[0b0101_1111, 0x33, 0x33, 0x33][..]));
    }

    #[test]
    fn integers_are_minimal_and_extended_types_take_two_bytes() {
        assert_eq!(encode(&Record::U32(0)), [0b1100_0000]);
        assert_eq!(encode(&Record::U32(13_335)), [0b1100_0010, 0x34, 0x17]);
        assert_eq!(encode(&Record::U16(258)), [0b1010_0010, 1, 2]);
        assert_eq!(encode(&Record::U64(1)), [0b0000_0001, 2, 1]);
        assert_eq!(
            encode(&Record::Array(vec![Record::U16(1)])),
            [0b0000_0001, 4, 0b1010_0001, 1]
        );
    }

    #[test]
    fn too_large_fields_are_refused() {
        let mut writer = DataWriter::new(true);
        let huge = Record::string("x".repeat(FIELD_MAX_SIZE + 1));
        assert!(matches!(
            writer.record(&huge),
            Err(WriterError::FieldTooLarge { .. })
        ));
    }

    /// Decodes a pointer the way the spec describes, to check the encoder against it.
    fn decode_pointer(bytes: &[u8]) -> u32 {
        let control = bytes[0];
        assert_eq!(control >> 5, TYPE_POINTER);
        let size = (control >> 3) & 0x03;
        let low = u32::from(control & 0x07);
        let rest = |n: usize| {
            bytes[1..=n]
                .iter()
                .fold(0u32, |acc, &b| acc << 8 | u32::from(b))
        };
        match size {
            0 => low << 8 | rest(1),
            1 => (low << 16 | rest(2)) + 2048,
            2 => (low << 24 | rest(3)) + 526_336,
            _ => rest(4),
        }
    }

    #[test]
    fn pointers_round_trip_at_every_size_boundary() {
        for offset in [
            0,
            1,
            2047,
            2048,
            2049,
            526_335,
            526_336,
            526_337,
            134_744_063,
            134_744_064,
            u32::MAX,
        ] {
            let mut writer = DataWriter::new(true);
            writer.pointer(offset);
            let bytes = writer.into_bytes();
            assert_eq!(decode_pointer(&bytes), offset, "{offset}: {bytes:?}");
        }
    }

    #[test]
    fn repeated_keys_strings_and_maps_become_pointers() {
        let inner = Record::map([("iso_code", Record::string("DE"))]);
        let a = Record::map([("country", inner.clone()), ("registered_country", inner)]);
        let b = Record::map([("country", Record::map([("iso_code", Record::string("FR"))]))]);
        let mut writer = DataWriter::new(true);
        let first = writer.record(&a).unwrap();
        let after_first = writer.bytes.len();
        let second = writer.record(&b).unwrap();
        assert_eq!(writer.record(&a).unwrap(), first, "records are stored once");
        assert_eq!(first, 0);
        assert_eq!(second as usize, after_first);
        let bytes = writer.into_bytes();
        // In `b`, the keys "country" and "iso_code" are pointers (2 bytes each).
        assert_eq!(bytes.len() - after_first, 1 + 2 + 1 + 2 + 3);
    }
}
