// Non-ASCII names are bundled in NFC.
let café = "☕️"
