//! When two nicknames read as the same name: a learner must not take the name of their
//! lecture's instructor or moderator (the room shows names, and the instructor calls on people
//! by them), and writing it in full-width letters, in capitals or with a space in the middle
//! must not get around that.
//!
//! The fold is Unicode's compatibility normalisation (NFKC: full-width and half-width forms,
//! half-width katakana with their sound marks, circled and styled letters such as 𝐓𝐚𝐫𝐨, ligatures)
//! with lower case in between (so `Ｔａｒｏ`, `TARO` and `taro` agree, and letters whose lower
//! case only normalises together do too), and no white space at all. Confusable letters of
//! other scripts (Cyrillic `а` for Latin `a`) are not folded: that needs Unicode's confusables
//! table, a larger and less certain rule.

use unicode_normalization::UnicodeNormalization;

/// The form two nicknames are compared in.
pub fn fold(nickname: &str) -> String {
    let once: String = nickname.nfkc().flat_map(char::to_lowercase).collect();
    once.nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// Whether `a` and `b` read as the same name.
pub fn same_name(a: &str, b: &str) -> bool {
    fold(a) == fold(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_case_and_spaces_do_not_make_another_name() {
        for (a, b) in [
            ("山田講師", "山田講師"),
            ("Taro", "taro"),
            ("ＴＡＲＯ", "taro"),
            ("Ｔａｒｏ", "TARO"),
            ("ﾔﾏﾀﾞ", "ヤマダ"),
            ("ｶﾞｲﾄﾞ", "ガイド"),
            ("山田　講師", "山田講師"),
            ("Yamada Sensei", "yamadasensei"),
            ("𝐓𝐚𝐫𝐨", "taro"),
            ("①②", "12"),
            ("ﬁne", "FINE"),
            ("ΣΟΦΙΑ", "σοφια"),
        ] {
            assert!(same_name(a, b), "{a} and {b}");
        }
    }

    #[test]
    fn different_names_stay_different() {
        for (a, b) in [
            ("山田講師", "山田"),
            ("たろう", "タロウ"),
            ("taro", "tarou"),
            ("taro1", "taro2"),
        ] {
            assert!(!same_name(a, b), "{a} and {b}");
        }
    }
}
