//! Country codes and country sets for the policy.
//!
//! This file owns the ISO 3166-1 alpha-2 list the policy validates codes against (plus `XK`,
//! the user-assigned code in common use for Kosovo), the built-in groups `EU` and `EEA`, the
//! compact [`CountrySet`] that rules match against without allocating, and the "did you mean"
//! suggestions given for unknown codes and names.

use crate::geoip::CountryCode;

/// Letters in the Latin alphabet: an alpha-2 code is two of them (ISO 3166-1).
const LETTERS: usize = 26;
/// Bits needed for every two-letter combination.
const COUNTRY_SET_BITS: usize = LETTERS * LETTERS;
/// 64-bit words holding [`COUNTRY_SET_BITS`] bits.
const COUNTRY_SET_WORDS: usize = COUNTRY_SET_BITS.div_ceil(64);

/// A set of country codes as a 26×26 bitset: membership is two subtractions and a bit test.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct CountrySet([u64; COUNTRY_SET_WORDS]);

impl CountrySet {
    /// The empty set.
    pub const EMPTY: CountrySet = CountrySet([0; COUNTRY_SET_WORDS]);

    /// Bit index of a code: `(first - 'A') * 26 + (second - 'A')`.
    fn index(code: CountryCode) -> Option<usize> {
        match code.as_str().as_bytes() {
            [a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => {
                Some(usize::from(a - b'A') * LETTERS + usize::from(b - b'A'))
            }
            _ => None,
        }
    }

    /// Adds one code.
    pub fn insert(&mut self, code: CountryCode) {
        if let Some(i) = Self::index(code)
            && let Some(word) = self.0.get_mut(i / 64)
        {
            *word |= 1 << (i % 64);
        }
    }

    /// Whether `code` is in the set.
    pub fn contains(&self, code: CountryCode) -> bool {
        Self::index(code)
            .and_then(|i| self.0.get(i / 64).map(|w| w & (1 << (i % 64)) != 0))
            .unwrap_or(false)
    }

    /// Adds every code of `other`.
    pub fn union_with(&mut self, other: &CountrySet) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a |= *b;
        }
    }

    /// Whether the set has no code.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// The codes in the set, sorted.
    pub fn codes(&self) -> Vec<CountryCode> {
        let mut out = Vec::new();
        for i in 0..COUNTRY_SET_BITS {
            let set = self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0);
            if set {
                // Both quotients are below 26, so the letters are ASCII capitals.
                let first = b'A' + u8::try_from(i / LETTERS).unwrap_or(0);
                let second = b'A' + u8::try_from(i % LETTERS).unwrap_or(0);
                let text = [first, second];
                if let Some(code) = std::str::from_utf8(&text).ok().and_then(CountryCode::new) {
                    out.push(code);
                }
            }
        }
        out
    }
}

impl std::fmt::Debug for CountrySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.codes()).finish()
    }
}

/// ISO 3166-1 alpha-2 codes with their common English short names, sorted by code.
/// `XK` (Kosovo) is a user-assigned code, included because databases use it.
pub const COUNTRIES: &[(&str, &str)] = &[
    ("AD", "Andorra"),
    ("AE", "United Arab Emirates"),
    ("AF", "Afghanistan"),
    ("AG", "Antigua and Barbuda"),
    ("AI", "Anguilla"),
    ("AL", "Albania"),
    ("AM", "Armenia"),
    ("AO", "Angola"),
    ("AQ", "Antarctica"),
    ("AR", "Argentina"),
    ("AS", "American Samoa"),
    ("AT", "Austria"),
    ("AU", "Australia"),
    ("AW", "Aruba"),
    ("AX", "Åland Islands"),
    ("AZ", "Azerbaijan"),
    ("BA", "Bosnia and Herzegovina"),
    ("BB", "Barbados"),
    ("BD", "Bangladesh"),
    ("BE", "Belgium"),
    ("BF", "Burkina Faso"),
    ("BG", "Bulgaria"),
    ("BH", "Bahrain"),
    ("BI", "Burundi"),
    ("BJ", "Benin"),
    ("BL", "Saint Barthélemy"),
    ("BM", "Bermuda"),
    ("BN", "Brunei"),
    ("BO", "Bolivia"),
    ("BQ", "Caribbean Netherlands"),
    ("BR", "Brazil"),
    ("BS", "Bahamas"),
    ("BT", "Bhutan"),
    ("BV", "Bouvet Island"),
    ("BW", "Botswana"),
    ("BY", "Belarus"),
    ("BZ", "Belize"),
    ("CA", "Canada"),
    ("CC", "Cocos (Keeling) Islands"),
    ("CD", "Democratic Republic of the Congo"),
    ("CF", "Central African Republic"),
    ("CG", "Congo"),
    ("CH", "Switzerland"),
    ("CI", "Côte d'Ivoire"),
    ("CK", "Cook Islands"),
    ("CL", "Chile"),
    ("CM", "Cameroon"),
    ("CN", "China"),
    ("CO", "Colombia"),
    ("CR", "Costa Rica"),
    ("CU", "Cuba"),
    ("CV", "Cabo Verde"),
    ("CW", "Curaçao"),
    ("CX", "Christmas Island"),
    ("CY", "Cyprus"),
    ("CZ", "Czechia"),
    ("DE", "Germany"),
    ("DJ", "Djibouti"),
    ("DK", "Denmark"),
    ("DM", "Dominica"),
    ("DO", "Dominican Republic"),
    ("DZ", "Algeria"),
    ("EC", "Ecuador"),
    ("EE", "Estonia"),
    ("EG", "Egypt"),
    ("EH", "Western Sahara"),
    ("ER", "Eritrea"),
    ("ES", "Spain"),
    ("ET", "Ethiopia"),
    ("FI", "Finland"),
    ("FJ", "Fiji"),
    ("FK", "Falkland Islands"),
    ("FM", "Micronesia"),
    ("FO", "Faroe Islands"),
    ("FR", "France"),
    ("GA", "Gabon"),
    ("GB", "United Kingdom"),
    ("GD", "Grenada"),
    ("GE", "Georgia"),
    ("GF", "French Guiana"),
    ("GG", "Guernsey"),
    ("GH", "Ghana"),
    ("GI", "Gibraltar"),
    ("GL", "Greenland"),
    ("GM", "Gambia"),
    ("GN", "Guinea"),
    ("GP", "Guadeloupe"),
    ("GQ", "Equatorial Guinea"),
    ("GR", "Greece"),
    ("GS", "South Georgia and the South Sandwich Islands"),
    ("GT", "Guatemala"),
    ("GU", "Guam"),
    ("GW", "Guinea-Bissau"),
    ("GY", "Guyana"),
    ("HK", "Hong Kong"),
    ("HM", "Heard Island and McDonald Islands"),
    ("HN", "Honduras"),
    ("HR", "Croatia"),
    ("HT", "Haiti"),
    ("HU", "Hungary"),
    ("ID", "Indonesia"),
    ("IE", "Ireland"),
    ("IL", "Israel"),
    ("IM", "Isle of Man"),
    ("IN", "India"),
    ("IO", "British Indian Ocean Territory"),
    ("IQ", "Iraq"),
    ("IR", "Iran"),
    ("IS", "Iceland"),
    ("IT", "Italy"),
    ("JE", "Jersey"),
    ("JM", "Jamaica"),
    ("JO", "Jordan"),
    ("JP", "Japan"),
    ("KE", "Kenya"),
    ("KG", "Kyrgyzstan"),
    ("KH", "Cambodia"),
    ("KI", "Kiribati"),
    ("KM", "Comoros"),
    ("KN", "Saint Kitts and Nevis"),
    ("KP", "North Korea"),
    ("KR", "South Korea"),
    ("KW", "Kuwait"),
    ("KY", "Cayman Islands"),
    ("KZ", "Kazakhstan"),
    ("LA", "Laos"),
    ("LB", "Lebanon"),
    ("LC", "Saint Lucia"),
    ("LI", "Liechtenstein"),
    ("LK", "Sri Lanka"),
    ("LR", "Liberia"),
    ("LS", "Lesotho"),
    ("LT", "Lithuania"),
    ("LU", "Luxembourg"),
    ("LV", "Latvia"),
    ("LY", "Libya"),
    ("MA", "Morocco"),
    ("MC", "Monaco"),
    ("MD", "Moldova"),
    ("ME", "Montenegro"),
    ("MF", "Saint Martin"),
    ("MG", "Madagascar"),
    ("MH", "Marshall Islands"),
    ("MK", "North Macedonia"),
    ("ML", "Mali"),
    ("MM", "Myanmar"),
    ("MN", "Mongolia"),
    ("MO", "Macao"),
    ("MP", "Northern Mariana Islands"),
    ("MQ", "Martinique"),
    ("MR", "Mauritania"),
    ("MS", "Montserrat"),
    ("MT", "Malta"),
    ("MU", "Mauritius"),
    ("MV", "Maldives"),
    ("MW", "Malawi"),
    ("MX", "Mexico"),
    ("MY", "Malaysia"),
    ("MZ", "Mozambique"),
    ("NA", "Namibia"),
    ("NC", "New Caledonia"),
    ("NE", "Niger"),
    ("NF", "Norfolk Island"),
    ("NG", "Nigeria"),
    ("NI", "Nicaragua"),
    ("NL", "Netherlands"),
    ("NO", "Norway"),
    ("NP", "Nepal"),
    ("NR", "Nauru"),
    ("NU", "Niue"),
    ("NZ", "New Zealand"),
    ("OM", "Oman"),
    ("PA", "Panama"),
    ("PE", "Peru"),
    ("PF", "French Polynesia"),
    ("PG", "Papua New Guinea"),
    ("PH", "Philippines"),
    ("PK", "Pakistan"),
    ("PL", "Poland"),
    ("PM", "Saint Pierre and Miquelon"),
    ("PN", "Pitcairn"),
    ("PR", "Puerto Rico"),
    ("PS", "Palestine"),
    ("PT", "Portugal"),
    ("PW", "Palau"),
    ("PY", "Paraguay"),
    ("QA", "Qatar"),
    ("RE", "Réunion"),
    ("RO", "Romania"),
    ("RS", "Serbia"),
    ("RU", "Russia"),
    ("RW", "Rwanda"),
    ("SA", "Saudi Arabia"),
    ("SB", "Solomon Islands"),
    ("SC", "Seychelles"),
    ("SD", "Sudan"),
    ("SE", "Sweden"),
    ("SG", "Singapore"),
    ("SH", "Saint Helena"),
    ("SI", "Slovenia"),
    ("SJ", "Svalbard and Jan Mayen"),
    ("SK", "Slovakia"),
    ("SL", "Sierra Leone"),
    ("SM", "San Marino"),
    ("SN", "Senegal"),
    ("SO", "Somalia"),
    ("SR", "Suriname"),
    ("SS", "South Sudan"),
    ("ST", "Sao Tome and Principe"),
    ("SV", "El Salvador"),
    ("SX", "Sint Maarten"),
    ("SY", "Syria"),
    ("SZ", "Eswatini"),
    ("TC", "Turks and Caicos Islands"),
    ("TD", "Chad"),
    ("TF", "French Southern Territories"),
    ("TG", "Togo"),
    ("TH", "Thailand"),
    ("TJ", "Tajikistan"),
    ("TK", "Tokelau"),
    ("TL", "Timor-Leste"),
    ("TM", "Turkmenistan"),
    ("TN", "Tunisia"),
    ("TO", "Tonga"),
    ("TR", "Turkey"),
    ("TT", "Trinidad and Tobago"),
    ("TV", "Tuvalu"),
    ("TW", "Taiwan"),
    ("TZ", "Tanzania"),
    ("UA", "Ukraine"),
    ("UG", "Uganda"),
    ("UM", "United States Minor Outlying Islands"),
    ("US", "United States"),
    ("UY", "Uruguay"),
    ("UZ", "Uzbekistan"),
    ("VA", "Vatican City"),
    ("VC", "Saint Vincent and the Grenadines"),
    ("VE", "Venezuela"),
    ("VG", "British Virgin Islands"),
    ("VI", "United States Virgin Islands"),
    ("VN", "Vietnam"),
    ("VU", "Vanuatu"),
    ("WF", "Wallis and Futuna"),
    ("WS", "Samoa"),
    ("XK", "Kosovo"),
    ("YE", "Yemen"),
    ("YT", "Mayotte"),
    ("ZA", "South Africa"),
    ("ZM", "Zambia"),
    ("ZW", "Zimbabwe"),
];

/// Other names people write for a country, mapped to its code.
const NAME_ALIASES: &[(&str, &str)] = &[
    ("America", "US"),
    ("USA", "US"),
    ("United States of America", "US"),
    ("Britain", "GB"),
    ("Great Britain", "GB"),
    ("England", "GB"),
    ("Scotland", "GB"),
    ("Wales", "GB"),
    ("Northern Ireland", "GB"),
    ("Russian Federation", "RU"),
    ("Korea", "KR"),
    ("Republic of Korea", "KR"),
    ("Holland", "NL"),
    ("The Netherlands", "NL"),
    ("Czech Republic", "CZ"),
    ("Türkiye", "TR"),
    ("Turkiye", "TR"),
    ("Ivory Coast", "CI"),
    ("Cote d'Ivoire", "CI"),
    ("Cape Verde", "CV"),
    ("Swaziland", "SZ"),
    ("Burma", "MM"),
    ("Macedonia", "MK"),
    ("Vatican", "VA"),
    ("Holy See", "VA"),
    ("East Timor", "TL"),
    ("Viet Nam", "VN"),
    ("DR Congo", "CD"),
    ("Macau", "MO"),
    ("Aland Islands", "AX"),
    ("Reunion", "RE"),
    ("Curacao", "CW"),
    ("Saint Barthelemy", "BL"),
];

/// Well-known codes that are not ISO 3166-1 alpha-2, mapped to the code to use instead.
const CODE_ALIASES: &[(&str, &str)] = &[
    // The United Kingdom's ISO code is GB; UK is only "exceptionally reserved".
    ("UK", "GB"),
    // The EU's own abbreviation for Greece is EL; ISO 3166-1 uses GR.
    ("EL", "GR"),
];

/// The 27 member states of the European Union (since 1 February 2020).
pub const EU: &[&str] = &[
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// The European Economic Area members outside the EU (the EEA is [`EU`] plus these).
pub const EEA_EXTRA: &[&str] = &["IS", "LI", "NO"];

/// The code for `text` (either case) when it is an assigned ISO 3166-1 alpha-2 code or `XK`.
pub fn assigned(text: &str) -> Option<CountryCode> {
    let code = CountryCode::new(text)?;
    COUNTRIES
        .binary_search_by(|(c, _)| (*c).cmp(code.as_str()))
        .ok()
        .map(|_| code)
}

/// The set of the listed codes (all assigned, by construction of the constants).
pub fn set_of(codes: &[&str]) -> CountrySet {
    let mut set = CountrySet::EMPTY;
    for code in codes.iter().filter_map(|c| assigned(c)) {
        set.insert(code);
    }
    set
}

/// The English name of an assigned code.
pub fn name_of(code: CountryCode) -> Option<&'static str> {
    COUNTRIES
        .iter()
        .find(|(c, _)| *c == code.as_str())
        .map(|(_, n)| *n)
}

/// Edit (Levenshtein) distance between two short strings, compared by character, ignoring case.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        if let Some(first) = cur.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev
                .get(j)
                .map_or(usize::MAX, |d| d + usize::from(ca != cb));
            let delete = prev.get(j + 1).map_or(usize::MAX, |d| d + 1);
            let insert = cur.get(j).map_or(usize::MAX, |d| d + 1);
            if let Some(slot) = cur.get_mut(j + 1) {
                *slot = substitute.min(delete).min(insert);
            }
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().unwrap_or(usize::MAX)
}

/// The code for a country written by name (`"China"`, `"china"`, `"Chna"`), if one is close.
pub fn code_for_name(text: &str) -> Option<&'static str> {
    let chars = text.chars().count();
    if chars < 3 {
        return None;
    }
    // One typo in short names, two in long ones.
    let tolerance = if chars >= 8 { 2 } else { 1 };
    COUNTRIES
        .iter()
        .map(|(code, name)| (*code, *name))
        .chain(NAME_ALIASES.iter().map(|(name, code)| (*code, *name)))
        .map(|(code, name)| (edit_distance(text, name), code))
        .filter(|(d, _)| *d <= tolerance)
        .min_by_key(|(d, _)| *d)
        .map(|(_, code)| code)
}

/// The code to suggest for an unknown two-letter code: a well-known alias (`UK` → `GB`,
/// `EL` → `GR`) or the same letters swapped (`EB` → `BE`). Codes one letter away are not
/// suggested: almost every unassigned code has more than four such neighbours.
pub fn suggest_code(text: &str) -> Option<&'static str> {
    let upper = text.to_ascii_uppercase();
    if let Some((_, to)) = CODE_ALIASES.iter().find(|(from, _)| *from == upper) {
        return Some(to);
    }
    let reversed: String = upper.chars().rev().collect();
    COUNTRIES
        .iter()
        .find(|(c, _)| *c == reversed)
        .map(|(c, _)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_unique_and_complete() {
        // 249 officially assigned codes plus XK.
        assert_eq!(COUNTRIES.len(), 250);
        for pair in COUNTRIES.windows(2) {
            if let [a, b] = pair {
                assert!(a.0 < b.0, "{} before {}", a.0, b.0);
            }
        }
        assert_eq!(EU.len(), 27);
        assert!(EU.iter().chain(EEA_EXTRA).all(|c| assigned(c).is_some()));
    }

    #[test]
    fn set_membership() {
        let eu = set_of(EU);
        assert!(eu.contains(CountryCode::new("BE").unwrap()));
        assert!(!eu.contains(CountryCode::new("GB").unwrap()));
        assert_eq!(eu.codes().len(), 27);
        let mut zz = CountrySet::EMPTY;
        zz.insert(CountryCode::new("ZZ").unwrap());
        assert!(zz.contains(CountryCode::new("zz").unwrap()));
        assert!(CountrySet::EMPTY.is_empty());
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest_code("UK"), Some("GB"));
        assert_eq!(suggest_code("el"), Some("GR"));
        assert_eq!(suggest_code("EB"), Some("BE"));
        assert_eq!(suggest_code("QQ"), None);
        assert_eq!(code_for_name("China"), Some("CN"));
        assert_eq!(code_for_name("chna"), Some("CN"));
        assert_eq!(code_for_name("Germny"), Some("DE"));
        assert_eq!(code_for_name("USA"), Some("US"));
        assert_eq!(code_for_name("nonsense-group"), None);
        assert_eq!(assigned("xk").map(|c| c.to_string()), Some("XK".into()));
        assert!(assigned("UK").is_none());
    }
}
