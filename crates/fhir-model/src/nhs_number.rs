//! The NHS number: ten digits whose last is a Modulus 11 check digit.

/// The identifier system of a verified NHS number.
pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";

/// The UK Core extension on an NHS number identifier that says whether the number was traced
/// and verified.
pub const VERIFICATION_STATUS_EXTENSION: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus";

/// True when `value` is ten digits with a correct Modulus 11 check digit and not all one digit
/// (`0000000000` passes the arithmetic but is not issued).
pub fn is_valid(value: &str) -> bool {
    let digits: Vec<u32> = value.chars().filter_map(|c| c.to_digit(10)).collect();
    if value.len() != 10 || digits.len() != 10 {
        return false;
    }
    if digits.iter().all(|d| *d == digits[0]) {
        return false;
    }
    let sum: u32 = digits[..9]
        .iter()
        .zip((2..=10).rev())
        .map(|(d, w)| d * w)
        .sum();
    let check = match 11 - (sum % 11) {
        11 => 0,
        10 => return false,
        c => c,
    };
    check == digits[9]
}

#[cfg(test)]
mod tests {
    use super::is_valid;

    #[test]
    fn known_numbers() {
        for good in ["9434765919", "9000000009", "4010232137"] {
            assert!(is_valid(good), "{good}");
        }
        for bad in [
            "9434765918",
            "0000000000",
            "943476591",
            "94347659190",
            "94347A5919",
            "",
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
    }
}
