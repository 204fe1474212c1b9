"""Personal-data scanners: emails, phone, card and national numbers, IBANs, IP addresses.

Used by `lockgate.guard.detectors.pii_detector`; numbers, IBANs and national ids are found in the
shape of the text (`ScannedText.shape`), then checked (Luhn, ISO 13616 mod 97, the DNI letter).
"""

from __future__ import annotations

import re

from lockgate.guard.scanning import Finding, Out, ScannedText, Scanner

__all__ = ["PII_SCANNERS"]


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


_EMAIL = re.compile(
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,24}(?![A-Za-z0-9-]|\.[A-Za-z0-9])"
)
_LOCAL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-"


def _emails(scanned: ScannedText, enabled: frozenset[str], out: Out) -> None:
    text = scanned.text
    if "@" not in text:
        return
    for m in _EMAIL.finditer(text):
        at = m.start()
        limit = max(0, at - 64)
        start = limit + len(text[limit:at].rstrip(_LOCAL_CHARS))
        if start == limit and start and text[start - 1] in _LOCAL_CHARS:
            continue  # a local part is at most 64 characters
        while start < at and text[start] == ".":
            start += 1
        if start < at and not _in_url(text, start):
            out.append(Finding(start, m.end(), "email"))


def _in_url(text: str, start: int) -> bool:
    """`scheme://user@host` or `scheme://user:password@host`: credentials, not an address."""
    if text[max(0, start - 3) : start] == "://":
        return True
    if text[start - 1 : start] != ":":
        return False
    scheme = text.rfind("://", max(0, start - 128), start)
    return scheme >= 0 and not any(c.isspace() or c == "/" for c in text[scheme + 3 : start])


# Numbers, on the shape (digits are 0): the literal 000 is the first three digits of a number.
_NUMBERS = re.compile(
    rb"000(?<![0Aa_]000)(?:"
    rb"(?P<us_ssn>-00-0000)"
    rb"|(?P<nanp>(?P<nsep>[-.])000(?P=nsep)0000)"
    rb"|(?P<nanp_paren>(?<=\(000)\)[ ]?000[-. ]0000)"
    rb"|(?P<card>0(?P<csep>[ -])0000(?P=csep)0000(?P=csep)0{1,4}(?:(?P=csep)000)?)"
    rb"|(?P<card_amex>0(?P<asep>[ -])000000(?P=asep)0{4,5})"
    rb"|(?P<card_solid>0{10,16})"
    rb"|(?P<es_dni>00000A)"
    rb")(?![0Aa_])"
)
_NUMBER_KINDS = {
    "us_ssn": "us_ssn",
    "nanp": "phone",
    "nanp_paren": "phone",
    "card": "credit_card",
    "card_amex": "credit_card",
    "card_solid": "credit_card",
    "es_dni": "es_dni",
}
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _numbers(scanned: ScannedText, enabled: frozenset[str], out: Out) -> None:
    if not scanned.digits:
        return
    text = scanned.text
    for m in _NUMBERS.finditer(scanned.shape):
        group = m.lastgroup or ""
        kind = _NUMBER_KINDS[group]
        if kind not in enabled:
            continue
        start, end = m.span()
        found = text[start:end]
        if kind == "credit_card":
            end = _card_end(found, start, group == "card")
            if end < 0:
                continue
        elif kind == "us_ssn":
            area, group_number, serial = found.split("-")
            if area in ("000", "666") or area[0] == "9" or group_number == "00" or serial == "0000":
                continue
        elif kind == "phone":
            if group == "nanp_paren":
                start -= 1
            if found[0] in "01":  # an area code starts with 2-9
                continue
        elif _DNI_LETTERS[int(found[:8]) % 23] != found[8]:
            continue
        out.append(Finding(start, end, kind))


def _card_end(found: str, start: int, grouped: bool) -> int:
    """End of a card number (13-19 digits, an issuer's first digit, Luhn), or -1."""
    digits = found.replace(" ", "").replace("-", "")
    if 13 <= len(digits) <= 19 and digits[0] in "23456" and _luhn(digits):
        return start + len(found)
    if grouped and found.count(found[4]) == 4:  # 4-4-4-4-3: maybe the last 3 are not the card's
        head = found[: found.rindex(found[4])]
        if _luhn(head.replace(found[4], "")) and head[0] in "23456":
            return start + len(head)
    return -1


# International numbers: +, a country code, groups of digits with one separator between them.
_PHONE = re.compile(rb"\+0(?<![0Aa_+]\+0)0*+(?:(?:[ .-]|[ ]?\(|\)[ .-]?)0++)*+(?![Aa_])")
_PHONE_GROUPS = re.compile(r"[0-9]+")
_DATE = re.compile(r"\+[0-9]{4}([-./])[0-9]{1,2}\1[0-9]{1,2}\Z")


def _phones(scanned: ScannedText, enabled: frozenset[str], out: Out) -> None:
    if not scanned.digits:
        return
    text = scanned.text
    if "+" not in text:
        return
    for m in _PHONE.finditer(scanned.shape):
        start, end = m.span()
        if end - start < 9:  # fewer than 8 digits
            continue
        groups = list(_PHONE_GROUPS.finditer(text, start, end))
        digits = sum(g.end() - g.start() for g in groups)
        while digits > 15 and len(groups) > 2:  # the next number was taken along: drop it
            digits -= groups[-1].end() - groups[-1].start()
            groups.pop()
        end = groups[-1].end()
        found = text[start:end]
        if (
            8 <= digits <= 15
            and found[1] != "0"
            and found.count("(") == found.count(")")
            and not _DATE.match(found)
            and not (
                len(groups) > 2 and "." in found and all(len(g.group()) == 3 for g in groups[1:])
            )
        ):
            out.append(Finding(start, end, "phone"))


# IPv4 on the shape: the literal "0." is the last digit of the first octet and its dot.
_IPV4 = re.compile(rb"0\.0{1,3}\.0{1,3}\.0{1,3}(?![0Aa_]|\.0)")


def _ipv4(scanned: ScannedText, enabled: frozenset[str], out: Out) -> None:
    if not scanned.digits:
        return
    shape, text = scanned.shape, scanned.text
    for m in _IPV4.finditer(shape):
        start = m.start()
        while start > 0 and m.start() - start < 2 and shape[start - 1] == 48:  # b"0"
            start -= 1
        if start > 0 and shape[start - 1] in b"0Aa_.":
            continue
        octets = text[start : m.end()].split(".")
        if any((len(o) > 1 and o[0] == "0") or int(o) > 255 for o in octets):
            continue
        if octets[0] in ("0", "127") or octets == ["255", "255", "255", "255"]:
            continue  # unspecified, loopback, broadcast: nobody's address
        out.append(Finding(start, m.end(), "ip_address"))


_HEX = "[0-9A-Fa-f]"
_IPV6 = re.compile(
    rf":(?:(?P<compressed>:(?:(?:{_HEX}{{1,4}}:){{0,5}}"
    rf"(?:[0-9]{{1,3}}(?:\.[0-9]{{1,3}}){{3}}|{_HEX}{{1,4}}))?(?![\w:]))"
    rf"|(?<={_HEX}:)(?:{_HEX}{{1,4}}:){{6}}{_HEX}{{1,4}}(?![\w:.]))"
)
_HEX_OR_COLON = "0123456789abcdefABCDEF:"
_IPV6_GROUPS = re.compile(r"[:.]")


def _ipv6(scanned: ScannedText, enabled: frozenset[str], out: Out) -> None:
    """Full and compressed forms (with `::`); not Rust or C++ paths (`a::b`, `Vec::new`).

    The match starts at the first colon (`re` skips to colons fast); the groups before it
    are found by walking back.
    """
    text = scanned.text
    if ":" not in text:
        return
    end = 0
    for m in _IPV6.finditer(text):
        start = m.start()
        if start < end:
            continue
        limit = max(0, start - (35 if m["compressed"] is not None else 4))
        start = limit + len(text[limit:start].rstrip(_HEX_OR_COLON))
        if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.:"):
            continue
        found = text[start : m.end()]
        if (found.startswith(":") and not found.startswith("::")) or ":::" in found:
            continue
        groups = [g for g in _IPV6_GROUPS.split(found) if g]
        if m["compressed"] is not None and (
            found.count("::") > 1 or len(groups) > 7 or not any(len(g) == 4 for g in groups)
        ):
            continue  # at least one group of four hex digits: not loopback, a::b or x[100::200]
        end = m.end()
        out.append(Finding(start, end, "ip_address"))


# IBAN (country, check digits, groups of four) and UK National Insurance numbers, on the shape.
_IBAN_OR_NINO = re.compile(
    rb"AA(?<![0Aa_]AA)(?:"
    rb"(?P<iban>00(?:[ ]?[0A]{4}){2,7}(?:[ ]?[0A]{1,3})?)"
    rb"|(?P<uk_nino>(?:000000|[ ]00[ ]00[ ]00[ ])A)"
    rb")(?![0Aa_])"
)
_IBAN_TABLE = (
    "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 "
    "DJ27 DK18 DO28 EE20 EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 "
    "HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 LY25 MC27 "
    "MD24 ME22 MK19 MN20 MR27 MT31 MU30 NI28 NL18 NO15 OM23 PK24 PL28 PS29 PT25 QA29 RO24 "
    "RS22 RU33 SA24 SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 SV28 TL23 TN24 TR26 UA29 VA22 "
    "VG24 XK20 YE30"
)
"""Each country's IBAN length (ISO 13616 registry)."""
_IBAN_LENGTHS = {entry[:2]: int(entry[2:]) for entry in _IBAN_TABLE.split()}
_LETTER_NUMBERS = {
    ord(letter): str(number) for number, letter in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 10)
}
"""A is 10, B is 11 ... Z is 35, as the IBAN check reads letters."""
_NINO_NEVER = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def _iban_valid(iban: str) -> bool:
    """ISO 13616: the country's length, and mod 97 of the rearranged number is 1."""
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    return int((iban[4:] + iban[:4]).translate(_LETTER_NUMBERS)) % 97 == 1


def _iban_and_nino(scanned: ScannedText, enabled: frozenset[str], out: Out) -> None:
    if not scanned.digits:
        return
    text = scanned.text
    for m in _IBAN_OR_NINO.finditer(scanned.shape):
        kind = m.lastgroup or ""
        found = text[m.start() : m.end()]
        if kind in enabled and (
            _iban_valid(found.replace(" ", "")) if kind == "iban" else _nino_valid(found)
        ):
            out.append(Finding(m.start(), m.end(), kind))


def _nino_valid(nino: str) -> bool:
    """HMRC's rules for the letters (there is no check digit); a serial of zeros is not issued."""
    return not (
        nino[2:-1].strip(" 0") == ""
        or nino[0] in "DFIQUV"
        or nino[1] in "DFIOQUV"
        or nino[:2] in _NINO_NEVER
        or nino[-1] not in "ABCD"
    )


PII_SCANNERS = (
    Scanner(frozenset({"email"}), _emails),
    Scanner(frozenset({"credit_card", "phone", "us_ssn", "es_dni"}), _numbers),
    Scanner(frozenset({"phone"}), _phones),
    Scanner(frozenset({"ip_address"}), _ipv4),
    Scanner(frozenset({"ip_address"}), _ipv6),
    Scanner(frozenset({"iban", "uk_nino"}), _iban_and_nino),
)
