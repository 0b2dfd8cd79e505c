"""The rules every adapter shares: redaction by meaning, navigations, origins, bounds."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from segment_core.client import Client
from segment_core.web import (
    DEFAULT_EXCLUDE_ROUTES,
    LIST_DEFAULTS,
    REDACTED,
    Redactor,
    RequestTracker,
    WebOptions,
    WSGIHeaders,
    accepts_document,
    client_ip,
    forwarded_origin,
    is_script_request,
    media_type,
    name_words,
    parse_id_cookie,
    redact_path,
    request_context,
    should_track_page,
    wire_path,
)
from segment_core.web._identity import kept_cookie_value, set_cookie_value
from segment_core.web._page import is_page_prefetch
from tests.web.conftest import BROWSER, NAVIGATION_ACCEPT, make_request

Messages = list[dict[str, Any]]
HTML = "text/html; charset=utf-8"
# What Turbo (7.2 on) sends with every request, and with a hover prefetch (Turbo 8).
TURBO_ID = "0b6f8a1e-5d8e-4a4e-9d7e-2f6f1f7c1a10"
TURBO_VISIT = {"sec-fetch-mode": "cors", "x-turbo-request-id": TURBO_ID}
TURBO_PREFETCH = {"x-turbo-request-id": TURBO_ID, "x-sec-purpose": "prefetch"}


# -- redaction by meaning -------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "password", "new_password", "newPassword", "user[password]", "PASSWORD",
        "accessToken", "access_token", "refresh-token", "id_token", "reset_token",
        "api-key", "apiKey", "X-API-Key", "x-amz-signature", "client_secret",
        "jwt", "otp", "sessionid", "JSESSIONID", "csrftoken", "auth", "Authorization",
        "email", "user[email]", "code", "auth_code", "inviteCode", "sig", "accesstoken",
        "newpassword", "credentials[aws]", "PHPSESSID", "passcode", "pw", "user_pw",
        "SAMLResponse", "SAMLRequest", "ticket",
        # Login links and one-time credentials of common packages and services:
        # django-sesame, Shopify, OAuth 1.0a and PKCE, Firebase, DiscourseConnect, SAML.
        "sesame", "hmac", "oauth_verifier", "code_verifier", "oobCode", "sso", "SAMLart",
        # Written together, all in lower case: a secret word glued after or before
        # another, a key or code of a credential.
        "useremail", "contactemail", "emailaddress", "emailid", "secretkey", "sessionkey",
        "passwordhash", "accesskey", "privatekey", "SECRETKEY", "authcode", "resetcode",
        "passwordconfirm", "sessiontoken", "secretaccesskey", "awssecretaccesskey",
        "privkey", "loginkey", "encryptkey", "passwords", "secrets",
        # One-time codes, an e-mail address by its short name.
        "onetimecode", "one_time_code", "oneTimeCode", "twofactorcode", "two_factor_code",
        "mail", "totp",
        # Plurals, and a name's words read written together.
        "api_keys", "apiKeys", "access_tokens", "accessTokens", "tokens", "emails",
        "recovery_codes", "backupCodes", "accesstokens", "resetcodes", "id_tokens",
        "github_tokens", "invite_tokens", "device_tokens", "magicTokens",
        # pwd and one-time codes glued, a secret word glued in the middle.
        "newpwd", "pwdconfirm", "emailcode", "emailotp", "totpcode", "newpasswordconfirm",
        # PINs and the codes of sign-in, unlock, 2FA and device-flow screens.
        "user_pin", "cardPin", "new_pin", "confirm_pin", "pin1", "pin_number",
        "pin_confirmation", "newPinRepeat", "2fa_code", "2FACode", "2fa", "tfa_code",
        "sign_in_code", "signin_code", "signInCode", "unlock_code", "user_code",
        "device_code", "authenticator_code",
        # Payment and contact data beside the CVV and e-mail; OpenID Connect's hint.
        "card_number", "cardNumber", "cc_number", "credit_card_number", "creditcard",
        "gift_card_number", "card_no", "cardno", "cc_num", "ccnum", "iban", "phone",
        "phone_number", "phoneNumber", "billing_phone", "mobilePhone", "telephone", "tel",
        "mobile_number", "telefono", "msisdn", "login_hint", "loginHint",
        # A card, a phone or a PIN among other words, and their plurals.
        "credit_card", "creditCard", "credit_card_no", "creditCardNum", "user_credit_card",
        "billing_cc_number", "customer_mobile_number", "phones", "phone_mobile", "phone1",
        "phone_ext", "mobile_phone_no", "billingPhoneNo", "customer[phones][0]", "tel_no",
        "upi_pin", "customer_pin", "enter_pin", "pos_pin", "pin_code", "pinCode",
        "code_2fa", "code_verification", "verified_phone", "confirmed_phone",
        "phone_verified_number", "mobile_no", "mobileNo", "contact_number", "cellphone",
        "no_tel", "telefono_movil", "card_pan", "card_expiry", "pin_hash", "lock_pin",
        "phone_whatsapp", "phone_billing", "phone_landline", "tel_portable", "tel_fixe",
        "telefono_cellulare", "phone_to_verify", "phone_for_sms", "pay_pin", "pin_retype",
        "pin_block", "credit_card_expiration", "credit_card_holder", "use_pin",
        "pay_verification_code", "use_backup_code", "phone_login", "pin_login", "pin_first",
        "pin_set", "pin_reset", "phone_top_up", "phone_payment", "pin_payment",
        "Telefonnummer", "telefon_nummer", "TelefonNummer", "Rufnummer", "Mobilnummer",
        "telefoonnummer", "gsm_nummer", "kreditkartennummer", "Kartennummer", "card_nr",
        "cardNr", "Handy_Nr", "numero_carte", "numeroTarjeta", "numero_de_tarjeta",
        "telefonnr", "mobil_nr", "Mobiltelefonnummer", "KreditkartenNr", "kreditkarten_nr",
        "Festnetz_Nr", "telefoon", "gsm_nr", "nro_tarjeta", "num_tarjeta", "card_nbr",
        "handynr", "Rufnr", "kartennr", "num_carte", "numero_cb",
        # The hash a reset or activation link carries.
        "reset_hash", "activation_hash", "confirm_hash", "verification_hash", "resetHash",
        "activationhash", "hash_reset", "login_hash", "user_hash",
        # As Spanish, French and Portuguese write them, accents and all; a credit
        # card by its name in German, Spanish, Portuguese, French and Italian; German
        # plurals.
        "número_tarjeta", "numéro_carte", "número_de_teléfono", "numéro_de_téléphone",
        "número_do_cartão", "téléphone", "teléfono", "Kreditkarte", "tarjeta_credito",
        "tarjeta_de_crédito", "cartão_de_crédito", "cartao_credito", "carte_bancaire",
        "carte_de_crédit", "carta_di_credito", "numero_tarjeta_credito",
        "Telefonnummern", "kreditkartennummern", "Rufnummern", "telefon_nummern",
        "mobiele_nummer", "mobielenummer", "cell_number", "cellNumber", "numero_portable",
        "numéro_de_portable", "giftcard_number", "giftCardNumber",
        # A card's "Valid Thru" date; its payments.
        "credit_card_valid_thru", "creditCardValidUntil", "credit_card_valid_to",
        "credit_card_payments_no",
        # "Password" in the languages of many login forms.
        "passwort", "Kennwort", "neues_Passwort", "contraseña", "contrasena", "senha",
        "mot_de_passe", "motDePasse", "wachtwoord", "lösenord", "passord", "salasana",
        "hasło", "heslo", "jelszó", "şifre", "ŞİFRE", "пароль", "новыйПароль", "密码",
        "パスワード", "비밀번호", "Paßwort", "neuesPasswort", "neuespasswort", "mdp",
        "clave", "lozinka",
        # Bank accounts, identity documents, a date of birth, a magic link, an OAuth
        # client's assertion.
        "account_number", "accountNumber", "bank_account", "routing_number", "acct_number",
        "passport_number", "passportNo", "passport_no", "national_id", "tax_id", "taxId",
        "drivers_license", "driverLicense", "date_of_birth", "dateOfBirth", "birthdate",
        "birth_date", "birthDate", "passport_id", "passport_num",
        "magic_link", "magicLink", "client_assertion",
        # Their other spellings: spelled out, British, a number's short names.
        "social_security_number", "socialSecurityNo", "drivers_licence", "driving_license",
        "tax_number", "tax_no", "account_no", "acct_no", "accountNo", "account_num",
        "routing_no", "passport_nr", "accountno", "acctno", "ACCTNO", "taxno", "routingno",
        "socialsecurityno", "account_no_confirm", "account_no_2", "accountNo2",
        # "pass" beside the words of a password's form field, or glued to them.
        "new_pass", "old_pass", "current_pass", "confirm_pass", "pass1", "pass2",
        "user_pass", "db_pass", "newpass", "oldpass", "repass", "pass_confirm",
        "pass_confirmation", "confirmPass", "newPass", "repeat_pass", "retype_pass",
        "admin_pass", "wifi_pass", "passw", "passconfirm", "user[new_pass]", "mail_pass",
        "imap_pass", "api_pass", "app_pass", "vpn_pass", "keypass", "storepass",
        # A wallet's recovery words, a security question's answer, WordPress's nonce.
        "seed_phrase", "mnemonic", "security_answer", "securityAnswer", "_wpnonce",
    ],
)  # fmt: skip
def test_secret_names(name: str) -> None:
    assert Redactor().is_secret(name)


@pytest.mark.parametrize(
    "name",
    [
        "keyword", "keywords", "monkey", "donkey", "author", "passenger", "q", "page",
        "utm_source", "country_code", "zip_code", "sort", "tokenizer", "turkey",
        "hashtag", "broken", "secretary", "ticket_id", "refresh", "state", "RelayState",
        "sso_provider", "shop", "timestamp", "hotkey", "whiskey", "hockey", "zipcode",
        "countrycode", "barcode", "secretaries", "tokens_used",
        # Words that merely start with a secret word.
        "passwordless", "passwordstrength", "sessions", "sessionduration", "sessioncount",
        "emailed", "emailcampaign", "emailsent", "secretsanta", "credentialed",
        "time_code", "timecode", "mailbox", "mail_count",
        # Plurals that count or choose, and a phone's mailbox.
        "keys", "cookies", "user_sessions", "max_tokens", "prompt_tokens", "maxTokens",
        "country_codes", "promo_codes", "monkeys", "voicemail", "voicemails",
        # A pin on a map, India's postal PIN code, a card's kind, a phone shop's
        # filters; a page's mobile view; a keyword.
        "pin_id", "pinned", "pin_lat", "map_pin", "dropped_pin", "pincode",
        "new_pin_location", "card_type", "credit_card_type", "accepts_credit_card",
        "credit_card_last4", "gift_card", "mobile", "card", "phone_brand", "phone_model",
        "has_phone", "phone_verified", "is_phone_verified", "smartphone", "palabra_clave",
        "code_name", "pin_size", "pin_style", "pin_enabled", "pin_slug", "lapel_pin",
        "save_pin", "phone_charger", "phone_holder", "phone_cover", "phone_opt_in",
        "phones_and_tablets", "credit_card_offers",
        "enable_pin", "phone_model_number", "phone_case_no", "phone_plan_no", "pin_board",
        "credit_card_payment", "credit_card_only", "credit_card_valid", "phone_valid",
        "phone_only", "pin_valid", "credit_card_payments", "artikelnummer", "bestellnummer",
        "numero_pedido",
        "artikelnr", "bestellnr", "kundennummer", "hausnummer", "hausnr", "file_hash",
        "commit_hash", "content_hash", "filehash", "image_hash", "hashtag",
        # A backup's, a device's or an app's checksum (Android's SMS Retriever).
        "backup_hash", "device_hash", "sms_hash", "security_hash", "devicehash",
        # A card, a number, a credit alone; words with accents that name nothing secret.
        "tarjeta", "carte", "carta", "cartão", "número", "crédito", "tarjeta_tipo",
        "carte_postale", "país", "descripción", "café", "numéro_de_commande",
        "cell", "cell_id", "portable", "giftcard", "giftcard_balance",
        # A travel site's filters; an account's page.
        "passport_country", "needs_passport", "has_passport", "dob_min", "show_dob",
        "account", "account_id", "bank", "tax", "birth_year",
        # A ticket's or a travel card's pass; a number of an order, a page, a room.
        "boarding_pass", "season_pass", "pass_type", "day_pass_2", "bypass", "compass",
        "pass_rate", "first_pass", "pass_through", "mountain_pass", "pass_id", "passage",
        "pass_fail", "order_no", "page_no", "room_no", "invoice_num", "phone_case_nr",
        "masterpass_enabled", "casino", "piano", "domino", "volcano", "no_reply",
    ],
)  # fmt: skip
def test_names_that_are_not_secrets(name: str) -> None:
    assert not Redactor().is_secret(name)


def test_a_number_s_short_names_read_alike_with_or_without_the_defaults() -> None:
    own = Redactor(["account_number", "member_number", "id_number"], defaults=False)
    for name in (
        *("account_no", "member_nr", "accountno", "memberNo2", "account_no_confirm"),
        *("membernumber", "idno", "idnr", "id_no"),
    ):
        assert own.is_secret(name), name
    assert not own.is_secret("order_no") and not own.is_secret("page")


def test_name_words() -> None:
    assert name_words("user[newPassword]") == ("user", "new", "password")
    assert name_words("HTTPServerKey") == ("http", "server", "key")


def test_name_words_of_any_script() -> None:
    assert name_words("новыйПароль") == ("новый", "пароль")
    assert name_words("user[κωδικός]") == ("user", "κωδικόσ")  # case-folded: a final sigma
    assert name_words("暗証番号_2") == ("暗証番号", "2")
    assert name_words("clé") == name_words("cle\u0301") == name_words("CLÉ") == ("clé",)
    # Full-width letters, as an input method types them: the letters they show.
    assert name_words("\uff4e\uff45\uff57\uff3f\uff50\uff41\uff53\uff53") == ("new", "pass")


@pytest.mark.parametrize(
    ("entry", "names"),
    [
        ("пароль", ["пароль", "ПАРОЛЬ", "новыйПароль", "user[пароль]"]),
        ("κωδικός", ["κωδικός", "ΚΩΔΙΚΌΣ", "νέος_κωδικός"]),
        ("暗証番号", ["暗証番号", "暗証番号-2"]),
        ("clé", ["clé", "CLÉ", "cle\u0301", "api_clé"]),
    ],
)
def test_extra_names_of_any_script(entry: str, names: list[str]) -> None:
    redactor = Redactor([entry])
    for name in names:
        escaped = quote(name)  # as a browser sends it
        query = f"{escaped}=hunter2&cl=visible&q=1"
        assert redactor.query(query) == f"{escaped}={REDACTED}&cl=visible&q=1", name
        assert redactor.query(f"{name}=hunter2") == f"{name}={REDACTED}", name
    assert not redactor.is_secret("cl")  # "clé" is one word, not "cl"


def test_a_default_secret_word_in_full_width_letters() -> None:
    full_width_password = "".join(chr(ord(letter) + 0xFEE0) for letter in "password")
    query = f"{quote(full_width_password)}=hunter2"
    assert Redactor().query(query) == f"{quote(full_width_password)}={REDACTED}"


@pytest.mark.parametrize("entry", ["[]", "_", " - ", "\u3002"])
def test_an_extra_name_without_a_word_is_refused(entry: str) -> None:
    with pytest.raises(
        ValueError, match=rf"^redact_query_params: {re.escape(repr(entry))} holds no word"
    ):
        WebOptions(redact_query_params=[entry])


def test_a_page_keeps_a_secret_named_in_another_script_out(client: Client, sent: Messages) -> None:
    options = WebOptions(redact_query_params=["пароль"])
    name = quote("пароль")
    request = make_request(path="/login", query_string=f"{name}=hunter2&cl=visible")
    RequestTracker(client, options, request).finish(200, content_type=HTML)
    [page] = sent
    assert page["properties"]["search"] == f"?{name}={REDACTED}&cl=visible"
    assert "hunter2" not in json.dumps(page)


def test_extra_names_are_words_or_words_in_a_row() -> None:
    redactor = Redactor(["coupon", "gift_card"])
    assert redactor.is_secret("couponCode") and redactor.is_secret("gift-card")
    assert not redactor.is_secret("gift") and not redactor.is_secret("card")
    assert redactor.is_secret("password")  # the defaults stay
    only = Redactor(["coupon"], defaults=False)
    assert only.is_secret("coupon") and not only.is_secret("password")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("next=/x?token=abc", f"next=/x?token={REDACTED}"),
        ("next=%2Fx%3Ftoken%3Dabc%26a%3D1", f"next=%2Fx%3Ftoken%3D{REDACTED}%26a%3D1"),
        (
            "return=https%3A%2F%2Fa.example%2Fcb%23access_token%3Dsecret",
            f"return=https%3A%2F%2Fa.example%2Fcb%23access_token%3D{REDACTED}",
        ),
        ("next=/a?next=/b?otp=1", f"next=/a?next=/b?otp={REDACTED}"),
        ("q=what?&keyword=monkey", "q=what?&keyword=monkey"),
    ],
)
def test_nested_urls_are_redacted(query: str, expected: str) -> None:
    redactor = Redactor()
    assert redactor.query(query) == expected
    assert redactor.query(query) == expected  # the answer remembered is the same
    assert redactor.url(f"/page?{query}#{query}") == f"/page?{expected}#{expected}"
    assert redactor.url(f"/page?{query}#{query}") == f"/page?{expected}#{expected}"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # ";" separates parameters for many servers.
        ("a=1;token=abc&b=2", f"a=1;token={REDACTED}&b=2"),
        # A URL escaped twice in a value.
        ("next=%252Freset%253Ftoken%253Dabc", f"next=%252Freset%253Ftoken%253D{REDACTED}"),
        # A URL with credentials in a value.
        ("u=http%3A%2F%2Fada%3Ahunter2%40h.example%2Fx", "u=http%3A%2F%2Fh.example%2Fx"),
        ("discount=50%25&q=a%40b", "discount=50%25&q=a%40b"),
    ],
)
def test_more_places_a_secret_hides_in_a_query(query: str, expected: str) -> None:
    assert Redactor().query(query) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://ada:hunter2@other.example/x?q=1", "https://other.example/x?q=1"),
        ("https://ada@other.example/", "https://other.example/"),
        ("/cart;jsessionid=abc123?q=1", f"/cart;jsessionid={REDACTED}?q=1"),
        ("mailto:ada@example.com", "mailto:ada@example.com"),
    ],
)
def test_more_places_a_secret_hides_in_a_url(url: str, expected: str) -> None:
    assert Redactor().url(url) == expected


def escaped(**values: str) -> str:
    """A query of ``values`` as browsers and ``urlencode`` write one."""
    return urlencode(values)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # JSON: the values of secret names, at any depth, whatever they hold.
        (
            escaped(variables='{"password": "hunter2", "q": "shoes"}'),
            escaped(variables='{"password": "REDACTED", "q": "shoes"}'),
        ),
        (
            'filter={"user":{"email":"ada@example.com","name":"Ada"}}',
            'filter={"user":{"email":"REDACTED","name":"Ada"}}',
        ),
        ('state={"auth":{"user":"ada","pass":"pw"},"n":1}', 'state={"auth":"REDACTED","n":1}'),
        ('v=[{"token":"t1"},{"token":["t2"]}]', 'v=[{"token":"REDACTED"},{"token":"REDACTED"}]'),
        ('v={"pin":1234,"pass\\u0077ord":"x"}', 'v={"pin":"REDACTED","pass\\u0077ord":"REDACTED"}'),
        # Escaped as it came: %20 for a space stays %20.
        ("v=%7B%22apiKey%22%3A%20%22sk%22%7D", "v=%7B%22apiKey%22%3A%20%22REDACTED%22%7D"),
        # What came unescaped stays so (a browser leaves parentheses and colons as typed).
        (
            "query=query%20%7B%20a(token%3A%20%22x%22)%20%7D",
            "query=query%20%7B%20a(token%3A%20%22REDACTED%22)%20%7D",
        ),
        ('v=%7B"pin":1,"q":"a%20b"%7D', 'v=%7B"pin":"REDACTED","q":"a%20b"%7D'),
        ("v=%7B%22token%22:%22a+b%22%7D", "v=%7B%22token%22:%22REDACTED%22%7D"),
        # Cut short (a browser's or a proxy's limit): what follows a secret name goes.
        (escaped(v='{"token": "abc'), escaped(v='{"token": "REDACTED"')),
        (escaped(v='{"token": {"a": [1, "x'), escaped(v='{"token": "REDACTED"')),
        # GraphQL: literals given to secret arguments and input fields.
        (
            escaped(query='mutation { login(email: "a@b.c", password: "pw", remember: true) }'),
            escaped(
                query='mutation { login(email: "REDACTED", password: "REDACTED", remember: true) }'
            ),
        ),
        (
            escaped(query='{ signUp(input: {name: "Ada", secret: """a\nb"""}) { id } }'),
            escaped(query='{ signUp(input: {name: "Ada", secret: "REDACTED"}) { id } }'),
        ),
        # The variables a document gives secret arguments, before or after it.
        (
            escaped(
                query="query($t: ID!) { invite(inviteToken: $t) { id } }", variables='{"t": "x"}'
            ),
            escaped(
                query="query($t: ID!) { invite(inviteToken: $t) { id } }",
                variables='{"t": "REDACTED"}',
            ),
        ),
        (
            escaped(variables='{"c": "x", "n": 1}', query="query($c: String) { a(auth: {c: $c}) }"),
            escaped(
                variables='{"c": "REDACTED", "n": 1}',
                query='query($c: String) { a(auth: "REDACTED") }',
            ),
        ),
        # The default value of a variable given to a secret argument; other defaults stay.
        (
            escaped(query='query R($t: String! = "x", $n: Int = 5) { reset(token: $t, n: $n) }'),
            escaped(
                query='query R($t: String! = "REDACTED", $n: Int = 5) { reset(token: $t, n: $n) }'
            ),
        ),
        (
            escaped(query='query R(\n $t: String # e-mail\n = "x"\n) { reset(token: $t) }'),
            escaped(query='query R(\n $t: String # e-mail\n = "REDACTED"\n) { reset(token: $t) }'),
        ),
        # Comments between any two tokens.
        (
            escaped(query='{ reset(token: # from the e-mail\n "x") { ok } }'),
            escaped(query='{ reset(token: # from the e-mail\n "REDACTED") { ok } }'),
        ),
        (
            escaped(query='{ reset(token # link\n : "x", input: {pin: # 4\n 1234}) }'),
            escaped(query='{ reset(token # link\n : "REDACTED", input: {pin: # 4\n "REDACTED"}) }'),
        ),
        (
            escaped(query='query($t: String = # default\n "x") { reset(token: $t) }'),
            escaped(query='query($t: String = # default\n "REDACTED") { reset(token: $t) }'),
        ),
        (
            escaped(query='mutation($p: [String] = ["a"]) { login(password: $p) { ok } }'),
            escaped(query='mutation($p: [String] = "REDACTED") { login(password: $p) { ok } }'),
        ),
        # GraphiQL's comments before the document.
        (
            escaped(query='# Welcome to GraphiQL\n\nmutation { reset(token: "t") }'),
            escaped(query='# Welcome to GraphiQL\n\nmutation { reset(token: "REDACTED") }'),
        ),
        # Not JSON after all, escaped once or twice: looked at as a URL.
        ("q=%7Bfoo%7D%3Ftoken%3Dabc", "q=%7Bfoo%7D%3Ftoken%3DREDACTED"),
        ("q=%257Bfoo%257D%253Ftoken%253Dabc", "q=%257Bfoo%257D%253Ftoken%253DREDACTED"),
        # A URL nested in a JSON value: redacted as any nested URL is, the JSON kept.
        (
            escaped(state='{"next": "/account?token=abc"}'),
            escaped(state='{"next": "/account?token=REDACTED"}'),
        ),
        # A ";" after a JSON value separates the next parameter, as servers split.
        ('f={"a":1};token=abc', 'f={"a":1};token=REDACTED'),
    ],
)
def test_json_and_graphql_in_a_query_lose_their_secrets(query: str, expected: str) -> None:
    redactor = Redactor()
    assert redactor.query(query) == expected
    assert redactor.url(f"https://shop.example/graphql?{query}") == (
        f"https://shop.example/graphql?{expected}"
    )


@pytest.mark.parametrize(
    "query",
    [
        escaped(query="query builder"),
        "q=query+code:+1234&q=query+token:+12345",  # searches, not GraphQL documents
        escaped(query="{ me { name } }", variables='{"first": 10}'),
        escaped(note='{"text": "password: \\"x\\" is not a field"}'),
        escaped(query='{ search(text: "token: abc") { id } }'),
        "ids=[1,2,3]&q=%7Bshoes%7D&q=+spaces",
        escaped(variables='{"token": "REDACTED"}'),
    ],
)
def test_json_and_graphql_without_secrets_are_kept_as_they_came(query: str) -> None:
    assert Redactor().query(query) == query


def invite_router(path: str) -> Mapping[str, Any] | None:
    # The app's router: /invite/<key>/ captures the key.
    parts = path.strip("/").split("/")
    return {"key": parts[1]} if len(parts) == 2 and parts[0] == "invite" else None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("next=/invite/KEY123/", f"next=/invite/{REDACTED}/"),
        ("next=%2Finvite%2FKEY123%2F", f"next=%2Finvite%2F{REDACTED}%2F"),
        ("next=/invite/KEY123/?a=1", f"next=/invite/{REDACTED}/?a=1"),
        ("next=/products/KEY123/", "next=/products/KEY123/"),
        ("next=//evil.example/invite/KEY123/", "next=//evil.example/invite/KEY123/"),
    ],
)
def test_a_path_of_the_app_in_a_value_loses_its_route_secrets(query: str, expected: str) -> None:
    redactor = Redactor()
    assert redactor.query(query, paths=invite_router) == expected
    assert redactor.query(query, paths=invite_router) == expected  # remembered alike
    assert redactor.query(query) == query  # without the router: no route to read


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # An OAuth state or a page's return value: JSON holding the page to come back to.
        (
            escaped(state='{"next": "/invite/KEY123/"}'),
            escaped(state=f'{{"next": "/invite/{REDACTED}/"}}'),
        ),
        (
            escaped(state='{"returnTo": "https://shop.example/invite/KEY123/?a=1"}'),
            escaped(state=f'{{"returnTo": "https://shop.example/invite/{REDACTED}/?a=1"}}'),
        ),
        (escaped(s='["/invite/KEY123/", 2]'), escaped(s=f'["/invite/{REDACTED}/", 2]')),
        # Slashes escaped as JSON may write them; a value cut short.
        (
            escaped(state='{"next": "\\/invite\\/KEY123\\/"}'),
            escaped(state=f'{{"next": "/invite/{REDACTED}/"}}'),
        ),
        (
            escaped(state='{"next": "/invite/KEY123/'),
            escaped(state=f'{{"next": "/invite/{REDACTED}/'),
        ),
        (
            escaped(state='{"next": "/products/KEY123/"}'),
            escaped(state='{"next": "/products/KEY123/"}'),
        ),
        # Cut short inside an escape, as an encoder that writes \/ may leave it.
        (
            escaped(state='{"next": "\\/invite\\/KEY123\\'),
            escaped(state=f'{{"next": "/invite/{REDACTED}'),
        ),
        (
            escaped(state='{"next": "\\/invite\\/KEY123\\u00'),
            escaped(state=f'{{"next": "/invite/{REDACTED}'),
        ),
        # A query string in a string, JSON in a string, JSON escaped twice.
        (
            escaped(state='{"returnTo": "next=/invite/KEY123/"}'),
            escaped(state=f'{{"returnTo": "next=/invite/{REDACTED}/"}}'),
        ),
        (
            escaped(state=json.dumps({"inner": json.dumps({"returnTo": "/invite/KEY123/"})})),
            escaped(state=json.dumps({"inner": json.dumps({"returnTo": f"/invite/{REDACTED}/"})})),
        ),
        (
            escaped(state=escaped(s='{"returnTo": "/invite/KEY123/"}')[2:]),
            escaped(state=escaped(s=f'{{"returnTo": "/invite/{REDACTED}/"}}')[2:]),
        ),
        (
            escaped(state=escaped(s='{"token": "hunter2"}')[2:]),
            escaped(state=escaped(s='{"token": "REDACTED"}')[2:]),
        ),
        (
            escaped(state=json.dumps({"inner": json.dumps({"token": "hunter2"})})),
            escaped(state=json.dumps({"inner": json.dumps({"token": "REDACTED"})})),
        ),
        # JSON in a string is JSON's text, not a query's: "%22" and "+" are as written.
        (
            escaped(state=json.dumps({"inner": json.dumps({"q": "%22 +1", "token": "h2"})})),
            escaped(state=json.dumps({"inner": json.dumps({"q": "%22 +1", "token": "REDACTED"})})),
        ),
        # JSON in a string as a browser writes it in a URL: its quotes escaped alone,
        # and written back so.
        (
            escaped(state='{"next": "{%22token%22:%22h2%22,%22to%22:%22/invite/KEY123/%22}"}'),
            escaped(
                state='{"next": "{%22token%22:%22REDACTED%22,%22to%22:%22/invite/'
                + REDACTED
                + '/%22}"}'
            ),
        ),
        # ... and with no path, "?" or "=" in it: a token alone, in an object or a list.
        (
            escaped(state='{"next": "{%22csrf_token%22:%22h2%22,%22d%22:%2250%%22}"}'),
            escaped(state='{"next": "{%22csrf_token%22:%22REDACTED%22,%22d%22:%2250%25%22}"}'),
        ),
        (
            escaped(state='["{%22token%22: %22h2%22}"]'),
            escaped(state='["{%22token%22:%20%22REDACTED%22}"]'),
        ),
        # Cut right after an escaped backslash, as PHP writes JSON in JSON ("\\\/").
        (
            escaped(state='{"s": "{\\"next\\": \\"\\\\/invite\\\\/KEY123\\\\'),
            escaped(state=f'{{"s": "{{\\"next\\": \\"/invite/{REDACTED}'),
        ),
    ],
)
def test_a_path_or_url_of_the_app_in_a_json_value_loses_its_route_secrets(
    query: str, expected: str
) -> None:
    redactor = Redactor()
    assert redactor.query(query, paths=invite_router, host="shop.example") == expected
    assert redactor.url(
        f"https://idp.example/login?{query}", paths=invite_router, host="shop.example"
    ) == (f"https://idp.example/login?{expected}")


def strict_invite_router(path: str) -> Mapping[str, Any] | None:
    # The app's router, as strict as Django's or Werkzeug's: only /invite/<key>/.
    found = re.fullmatch(r"/invite/([^/]+)/", path)
    return {"key": found.group(1)} if found else None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Dot segments, as browsers resolve them.
        ("next=/./invite/KEY123/", f"next=/./invite/{REDACTED}/"),
        ("next=/a/../invite/KEY123/", f"next=/a/../invite/{REDACTED}/"),
        ("next=https://shop.example/x/../invite/KEY123/", f"next=https://shop.example/x/../invite/{REDACTED}/"),
        # What the router redirects to its route: merged slashes, the trailing slash.
        ("next=/invite//KEY123/", f"next=/invite//{REDACTED}/"),
        ("next=/invite/KEY123", f"next=/invite/{REDACTED}"),
        ("next=https://shop.example/invite/KEY123", f"next=https://shop.example/invite/{REDACTED}"),
        ("next=/products/KEY123", "next=/products/KEY123"),
    ],
)  # fmt: skip
def test_a_path_of_the_app_spelled_another_way_loses_its_route_secrets(
    query: str, expected: str
) -> None:
    redactor = Redactor()
    assert redactor.query(query, paths=strict_invite_router, host="shop.example") == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # What Flask's url_for("login", next=request.url) and FastAPI's
        # f"/login?next={request.url}" write: the app's own absolute URL.
        ("next=http://shop.example/invite/KEY123/", f"next=http://shop.example/invite/{REDACTED}/"),
        (
            "next=https%3A%2F%2Fshop.example%2Finvite%2FKEY123%2F%3Fa%3D1",
            f"next=https%3A%2F%2Fshop.example%2Finvite%2F{REDACTED}%2F%3Fa%3D1",
        ),
        ("next=HTTPS://SHOP.example:443/invite/KEY123/", f"next=HTTPS://SHOP.example:443/invite/{REDACTED}/"),
        # A port of its own on one side only: the same app, as for a same-app Referer.
        ("next=http://shop.example:8000/invite/KEY123/", f"next=http://shop.example:8000/invite/{REDACTED}/"),
        ("next=https://other.example/invite/KEY123/", "next=https://other.example/invite/KEY123/"),
        ("next=https://shop.example.evil/invite/KEY123/", "next=https://shop.example.evil/invite/KEY123/"),
        ("next=ftp://shop.example/invite/KEY123/", "next=ftp://shop.example/invite/KEY123/"),
        ("next=https://shop.example/products/KEY123/", "next=https://shop.example/products/KEY123/"),
        # Scheme-relative, as Django's url_has_allowed_host_and_scheme lets it through.
        ("next=//shop.example/invite/KEY123/", f"next=//shop.example/invite/{REDACTED}/"),
        (
            "next=%2F%2Fshop.example%2Finvite%2FKEY123%2F",
            f"next=%2F%2Fshop.example%2Finvite%2F{REDACTED}%2F",
        ),
        ("next=/\\shop.example/invite/KEY123/", f"next=/\\shop.example/invite/{REDACTED}/"),
        ("next=//shop.example.evil/invite/KEY123/", "next=//shop.example.evil/invite/KEY123/"),
        # What browsers read as the same URL: spaces around it, tabs in it,
        # backslashes for slashes, the host's last dot.
        ("next=%20https://shop.example/invite/KEY123/", f"next=https://shop.example/invite/{REDACTED}/"),
        ("next=ht%09tps://shop.example/invite/KEY123/", f"next=https://shop.example/invite/{REDACTED}/"),
        (
            "next=https:%5C%5Cshop.example%5Cinvite%5CKEY123%5C",
            f"next=https:%5C%5Cshop.example/invite/{REDACTED}/",
        ),
        (
            "next=https:\\\\shop.example\\invite\\KEY123",
            f"next=https:\\\\shop.example/invite/{REDACTED}",
        ),
        ("next=https://shop.example./invite/KEY123/", f"next=https://shop.example./invite/{REDACTED}/"),
        ("next=https://shop%2Eexample/invite/KEY123/", f"next=https://shop.example/invite/{REDACTED}/"),
    ],
)  # fmt: skip
def test_a_url_of_the_app_in_a_value_loses_its_route_secrets(query: str, expected: str) -> None:
    redactor = Redactor()
    assert redactor.query(query, paths=invite_router, host="shop.example") == expected
    assert redactor.query(query, paths=invite_router, host="shop.example") == expected
    # Another host's request, or no router: the URL is another site's, or unreadable.
    assert redactor.query(query, paths=invite_router, host="elsewhere.example") == query
    assert redactor.query(query, host="shop.example") == query


@pytest.mark.parametrize(
    "origin",
    [
        "http://café.example",
        "http://CAFÉ.example",
        "https://cafe\u0301.example",  # decomposed: an "e" and a combining accent
        "http://xn--caf-dma\u3002example",  # an ideographic full stop
        "http://café\uff0eexample.",  # a full-width one, and the last dot
        "//café.example",
        "https://caf%C3%A9.example",  # escaped in the host
    ],
)
def test_a_url_of_the_app_with_its_host_in_unicode_loses_its_route_secrets(origin: str) -> None:
    query = "next=" + quote(f"{origin}/invite/KEY123/", safe="")
    redacted = Redactor().query(query, paths=invite_router, host="xn--caf-dma.example")
    assert "KEY123" not in redacted
    assert redacted.endswith(f"%2Finvite%2F{REDACTED}%2F")
    # Not the host of an app on cafe.example.
    assert Redactor().query(query, paths=invite_router, host="cafe.example") == query


def test_a_url_on_another_port_of_the_host_is_another_app_s() -> None:
    query = "next=http://localhost:3000/invite/KEY123/"
    assert Redactor().query(query, paths=invite_router, host="localhost:8000") == query


def test_a_login_page_after_a_secret_link_keeps_its_absolute_url_out(
    client: Client, sent: Messages
) -> None:
    request = make_request(
        scheme="http",  # behind a proxy that ends TLS: the app sees http
        path="/login",
        query_string="next=https%3A%2F%2Fshop.example%2Finvite%2FKEY123%2F&utm_source=mail",
        headers={"referer": "https://shop.example/login?next=https://shop.example/invite/KEY9/"},
        route_of_path=invite_router,
    )
    tracker = RequestTracker(client, WebOptions(), request)
    tracker.finish(200, content_type=HTML)
    [page] = sent
    assert "KEY123" not in json.dumps(page) and "KEY9" not in json.dumps(page)
    assert page["properties"]["search"].startswith(
        f"?next=https%3A%2F%2Fshop.example%2Finvite%2F{REDACTED}%2F&"
    )
    assert (
        page["properties"]["referrer"]
        == f"https://shop.example/login?next=https://shop.example/invite/{REDACTED}/"
    )


def test_a_login_page_after_a_secret_link_keeps_the_secret_out(
    client: Client, sent: Messages
) -> None:
    # @login_required sends /invite/KEY/ to /login?next=/invite/KEY/.
    request = make_request(
        path="/login",
        query_string="next=%2Finvite%2FKEY123%2F",
        headers={"referer": "http://SHOP.example:443/login?next=/invite/KEY123/"},
        route_of_path=invite_router,
    )
    tracker = RequestTracker(client, WebOptions(), request)
    tracker.finish(200, content_type=HTML)
    [page] = sent
    assert "KEY123" not in json.dumps(page)
    assert page["properties"]["search"] == f"?next=%2Finvite%2F{REDACTED}%2F"


@pytest.mark.parametrize(
    "referrer",
    [
        "https://shop.example:443/invite/KEY123/",
        "https://SHOP.EXAMPLE/invite/KEY123/",
        "https://ada:pw@shop.example/invite/KEY123/",
    ],
)
def test_a_referrer_of_the_app_however_written(
    client: Client, sent: Messages, referrer: str
) -> None:
    request = make_request(headers={"referer": referrer}, route_of_path=invite_router)
    RequestTracker(client, WebOptions(), request).finish(200, content_type=HTML)
    [page] = sent
    shown = page["properties"]["referrer"]
    assert shown.endswith(f"/invite/{REDACTED}/") and "KEY123" not in shown
    assert "ada" not in shown


def test_each_redactor_remembers_its_own_answers() -> None:
    url = "https://a.example/?coupon=X1&token=t"
    default, coupons = Redactor(), Redactor(["coupon"], defaults=False)
    for _ in range(2):
        assert default.url(url) == f"https://a.example/?coupon=X1&token={REDACTED}"
        assert coupons.url(url) == f"https://a.example/?coupon={REDACTED}&token=t"
        assert default.query("coupon=X1") == "coupon=X1"
        assert coupons.query("coupon=X1") == f"coupon={REDACTED}"


def test_what_a_redactor_remembers_is_bounded() -> None:
    redactor = Redactor()
    for number in range(5000):
        assert redactor.query(f"q={number}&secret=s") == f"q={number}&secret={REDACTED}"
        assert redactor.url(f"/s?q={number}") == f"/s?q={number}"
    long_query = "q=" + "x" * 5000 + "&token=t"
    assert redactor.query(long_query) == long_query.replace("token=t", f"token={REDACTED}")
    remembered = [*redactor._queries, *redactor._urls]
    assert 0 < len(remembered) <= 2 * 1024
    assert long_query not in remembered


UUID_TEXT = "5f3b1c2d-1111-4222-8333-444455556666"


@pytest.mark.parametrize(
    ("path", "values", "expected"),
    [
        ("/reset/MQ/c4b-9f1/", ["c4b-9f1"], "/reset/MQ/REDACTED/"),
        ("/files/a/b/c", ["a/b"], "/files/REDACTED/c"),
        ("/reset-abcd1234", ["abcd1234"], "/reset-REDACTED"),
        ("/i/caf%C3%A9", ["caf\u00e9"], "/i/REDACTED"),
        ("/i/ab", ["zz"], "/i/ab"),
        # What a converter made of the path's text: a UUID, an integer.
        ("/r/5F3B1C2D-1111-4222-8333-444455556666", [UUID_TEXT], "/r/REDACTED"),
        ("/r/5f3b1c2d111142228333444455556666", [UUID_TEXT], "/r/REDACTED"),
        ("/r/0042", ["42"], "/r/REDACTED"),
        ("/r/42/1042", ["42"], "/r/REDACTED/1042"),
        # Django under WSGI re-escapes bytes that are not UTF-8 in a route's value.
        ("/invite/%FFSECRETXYZ", ["%FFSECRETXYZ"], "/invite/REDACTED"),
        ("/dl/x%FFab%2Fcd", ["%FFab/cd"], "/dl/xREDACTED"),
        # A <path:...> value whose slashes are written as "/" and "%2F" (or "%2f").
        ("/dl/v1/q8Zr%2BK3y%2Fk3J%3D%3D", ["v1/q8Zr+K3y/k3J=="], "/dl/REDACTED"),
        ("/dl/q8Zr%2BK3y%2Fk3J%3D/file.pdf", ["q8Zr+K3y/k3J=/file.pdf"], "/dl/REDACTED"),
        ("/dl/a/b%2fc/d/", ["a/b/c/d"], "/dl/REDACTED/"),
        ("/dl/a%2Fb%2Fc", ["a/b/c"], "/dl/REDACTED"),
        # A part of the value that is also an ordinary segment of the path stays there.
        ("/v1/dl/v1/ab%2Fcd", ["v1/ab/cd"], "/v1/dl/REDACTED"),
        # The value wherever the path holds it whole, as many times as it does.
        ("/a/bcde/dl/a%2Fbcde", ["a/bcde"], "/REDACTED/dl/REDACTED"),
        # A value that starts or ends inside a segment: the whole path.
        ("/dl/a/bcdef.pdf", ["a/bcdef"], "/REDACTED"),
        ("/dl/v1/k3y%2Fz9.pdf/", ["v1/k3y/z9"], "/REDACTED/"),
        # Routed with a fragment a client wrote into the request line, which the
        # path leaves out; one the path holds (escaped) is the value's own.
        ("/invite/SEKRIT01", ["SEKRIT01#frag"], "/invite/REDACTED"),
        ("/invite/a%23bcd", ["a#bcd"], "/invite/REDACTED"),
        ("/invite/SEK%23RIT01", ["SEK#RIT01#frag"], "/invite/REDACTED"),
        ("/dl/ab%23c/SEKRIT02", ["ab#c/SEKRIT02#frag"], "/dl/REDACTED"),
    ],
)
def test_redact_path(path: str, values: list[str], expected: str) -> None:
    assert redact_path(path, values) == expected


SIGNED = "eyJ1aWQiOjd9.c2lnbmVk"  # a signed token, which a converter reads as {"uid": 7}


def test_a_route_value_a_converter_made_another_object_of_is_redacted_as_written() -> None:
    redactor = Redactor()
    path = f"/team/red/confirm/{SIGNED}/"
    params = {"team": "red", "token": {"uid": 7}, "pk": 42}
    assert redactor.needs_path_texts(params, path)
    written = redactor.with_path_texts(params, path, {"team": "red", "token": SIGNED, "pk": "42"})
    assert written == {"team": "red", "token": SIGNED, "pk": "42"}
    assert redact_path(path, redactor.secret_values(written)) == f"/team/red/confirm/{REDACTED}/"


@pytest.mark.parametrize(
    "params",
    [
        {"team": "red", "pk": 42, "slug": "a-b"},  # nothing secret
        {"token": SIGNED, "reset_key": UUID_TEXT, "key_id": "7"},  # secrets, as the path has them
    ],
)
def test_route_values_the_path_holds_need_no_second_look(params: dict[str, Any]) -> None:
    path = f"/r/{SIGNED}/{UUID_TEXT}/7/42/red/a-b"
    assert not Redactor().needs_path_texts(params, path)


def test_a_secret_route_object_is_read_from_the_path_wherever_its_digits_stand() -> None:
    # A hashid converter reads "lflv" as the invite's number, 1; "/v1/" holds a "1".
    redactor = Redactor()
    path = "/v1/invite/lflv/"
    params = {"invite_key": 1}
    assert redactor.needs_path_texts(params, path)
    assert redactor.needs_path_texts({"key_id": 7}, "/r/7")  # a number: its text may be "07"
    written = redactor.with_path_texts(params, path, {"invite_key": "lflv"})
    assert redact_path(path, redactor.secret_values(written)) == f"/v1/invite/{REDACTED}/"
    unread = redactor.with_path_texts(params, path, None)
    assert redact_path(path, redactor.secret_values(unread)) == f"/{REDACTED}/"


def test_a_parameter_the_path_does_not_hold_leaves_the_path_whole() -> None:
    # A Host route's {tenant_key}, read from the host name: its text is "".
    redactor = Redactor()
    written = redactor.with_path_texts({"tenant_key": "acme"}, "/about", {"tenant_key": ""})
    assert redact_path("/about", redactor.secret_values(written)) == "/about"


def test_a_secret_route_value_whose_text_cannot_be_read_hides_the_whole_path() -> None:
    redactor = Redactor()
    path = f"/confirm/{SIGNED}/done"
    written = redactor.with_path_texts({"token": {"uid": 7}, "step": "done"}, path, None)
    assert redact_path(f"/shop{path}", redactor.secret_values(written)) == f"/shop/{REDACTED}"


def test_secret_route_parameters_leave_every_field(client: Client, sent: Messages) -> None:
    request = make_request(
        path="/invite/s3cr3t",
        route_name="invite",
        path_params={"invite_key": "s3cr3t", "team": "red"},
        headers={"referer": "https://shop.example/invite/0ld?x=1"},
        route_of_path=lambda path: {"invite_key": path.rsplit("/", 1)[-1]},
    )
    tracker = RequestTracker(client, WebOptions(page_name="path"), request)
    tracker.analytics.track("Opened")
    tracker.finish(200, content_type=HTML)
    track, page = sent
    assert page["name"] == "/invite/REDACTED"
    for fields in (track["context"]["page"], page["properties"]):
        assert fields["path"] == "/invite/REDACTED"
        assert fields["url"] == "https://shop.example/invite/REDACTED"
        assert fields["referrer"] == "https://shop.example/invite/REDACTED?x=1"
    assert "s3cr3t" not in json.dumps(sent) and "0ld" not in json.dumps(sent)


def test_a_route_learned_during_the_view_redacts_the_next_calls(
    client: Client, sent: Messages
) -> None:
    request = make_request(path="/t/abc123")

    def read_route(info: Any, final: bool) -> bool:
        info.route_name, info.path_params = "t", {"token": "abc123"}
        return True

    tracker = RequestTracker(client, WebOptions(), request, read_route=read_route)
    tracker.analytics.track("Opened")
    assert sent[0]["context"]["page"]["path"] == "/t/REDACTED"


# -- what counts as a page view ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Text/HTML; Charset=UTF-8", "text/html"),
     (" Application/XHTML+XML ", "application/xhtml+xml"),
     (None, ""), ("", "")],
)  # fmt: skip
def test_media_type(value: str | None, expected: str) -> None:
    assert media_type(value) == expected


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [("text/html", True), ("TEXT/HTML;charset=utf-8", True), ("application/xhtml+xml", True),
     ("application/json", False), ("text/javascript", False), ("text/html-sandboxed", False),
     (None, False), ("text/plain", False)],
)  # fmt: skip
def test_content_types(content_type: str | None, expected: bool) -> None:
    request = make_request()
    assert should_track_page(request, 200, WebOptions(), content_type=content_type) is expected


def test_page_content_types_extend() -> None:
    options = WebOptions(page_content_types=["application/vnd.shop+html"])
    assert should_track_page(make_request(), 200, options, content_type="text/html")
    assert should_track_page(
        make_request(), 200, options, content_type="application/vnd.shop+html; q=1"
    )


@pytest.mark.parametrize(
    ("accept", "expected"),
    [("text/html,*/*;q=0.8", True), ("application/xhtml+xml", True), ("*/*", False),
     ("application/json", False), ("text/html;q=0", False), ("text/html; q=0.5", True),
     (None, False)],
)  # fmt: skip
def test_a_304_needs_a_request_for_html(accept: str | None, expected: bool) -> None:
    headers = {"accept": accept} if accept is not None else {"accept": ""}
    request = make_request(headers=headers)
    assert accepts_document(accept, WebOptions()) is expected
    assert should_track_page(request, 304, WebOptions()) is expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, False),
        ({"x-requested-with": "XMLHttpRequest"}, True),
        ({"x-requested-with": "xmlhttprequest"}, True),
        ({"hx-request": "true"}, True),
        ({"hx-request": "true", "hx-boosted": "true"}, False),
        ({"turbo-frame": "list"}, True),
        ({"sec-fetch-mode": "cors"}, True),
        ({"sec-fetch-mode": "no-cors"}, True),
        ({"sec-fetch-mode": "navigate"}, False),
        ({"sec-fetch-mode": " Navigate "}, False),
        ({"sec-fetch-mode": "same-origin"}, True),
        ({"sec-fetch-mode": ""}, True),
        ({"sec-fetch-mode": "navigate", "x-requested-with": "XMLHttpRequest"}, True),
        ({"sec-fetch-mode": "navigate", "sec-purpose": "prefetch"}, True),
        ({"sec-fetch-mode": "navigate", "hx-request": "true", "hx-boosted": "true"}, False),
        # As a browser sends a boosted navigation: htmx fetches it in "cors" mode.
        ({"sec-fetch-mode": "cors", "hx-request": "true", "hx-boosted": "true"}, False),
        ({"sec-fetch-mode": "cors", "hx-request": "true"}, True),
        ({"sec-fetch-mode": "cors", "hx-request": "true", "hx-boosted": "false"}, True),
        ({"sec-fetch-mode": "cors", "hx-request": "true", "hx-boosted": " False"}, True),
        ({"sec-fetch-mode": "cors", "hx-request": "true", "hx-boosted": ""}, True),
        ({"sec-fetch-mode": "cors", "hx-request": "true", "hx-boosted": "0"}, True),
        ({"sec-fetch-mode": "cors", "hx-request": "true", "hx-boosted": "True"}, False),
        ({"sec-purpose": "prefetch", "hx-request": "true", "hx-boosted": "true"}, True),
        ({"sec-fetch-mode": "navigate", "purpose": "nothing"}, False),
        ({"sec-purpose": "prefetch"}, True),
        ({"sec-purpose": "prefetch;prerender"}, True),
        ({"purpose": "prefetch"}, True),
        ({"x-purpose": "preview"}, True),
        ({"x-moz": "prefetch"}, True),
        # A Turbo Drive visit: fetch()ed in "cors" mode, it renders a whole document.
        (TURBO_VISIT, False),
        ({"x-turbo-request-id": TURBO_ID}, False),
        ({**TURBO_VISIT, "turbo-frame": "list"}, True),
        # Turbo's hover prefetch: the visit it serves asks the server nothing.
        ({**TURBO_VISIT, **TURBO_PREFETCH}, True),
        (TURBO_PREFETCH, True),
        ({**TURBO_VISIT, "sec-purpose": "prefetch"}, True),
        ({**TURBO_VISIT, "purpose": "prefetch"}, True),
        ({"x-requested-with": "XMLHttpRequest", "x-turbo-request-id": TURBO_ID}, True),
    ],
)
@pytest.mark.parametrize("kind", ["dict", "wsgi", "mapping"])
def test_script_requests(headers: dict[str, str], expected: bool, kind: str) -> None:
    """The same answer for every kind of headers an adapter hands over."""
    given = {"user-agent": BROWSER, "accept": NAVIGATION_ACCEPT, **headers}
    view: Mapping[str, str]
    if kind == "dict":
        view = given
    elif kind == "wsgi":
        environ = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in given.items()}
        view = WSGIHeaders({"REQUEST_METHOD": "GET", "PATH_INFO": "/", **environ})
    else:
        view = _CaseInsensitive(given)  # as a framework's own header object
    request = make_request()
    request.headers = view
    assert is_script_request(request) is expected


def test_a_turbo_drive_visit_is_a_page_view_and_its_hover_prefetch_is_not() -> None:
    """As a browser sends them: Turbo fetch()es a visit, outside any frame."""
    fetch = {**TURBO_VISIT, "sec-fetch-dest": "empty", "sec-fetch-site": "same-origin"}
    visit = make_request(headers=fetch)
    prefetch = make_request(headers={**fetch, **TURBO_PREFETCH})
    frame = make_request(headers={**fetch, "turbo-frame": "list"})
    assert should_track_page(visit, 200, WebOptions(), content_type=HTML)
    assert not should_track_page(prefetch, 200, WebOptions(), content_type=HTML)
    assert not should_track_page(frame, 200, WebOptions(), content_type=HTML)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, False),
        ({"sec-fetch-mode": "navigate"}, False),  # a page view: the server counts it
        # Speculation rules: a prefetch, a prerender; <link rel=prefetch>.
        ({"sec-fetch-mode": "navigate", "sec-purpose": "prefetch"}, True),
        ({"sec-fetch-mode": "navigate", "sec-purpose": "prefetch;prerender"}, True),
        ({"sec-fetch-mode": "no-cors", "sec-purpose": "prefetch"}, True),
        ({"purpose": "prefetch"}, True),
        ({"x-moz": "prefetch"}, True),
        # No page either way: a script's request, or a preview nobody is shown.
        ({"sec-fetch-mode": "cors", "purpose": "prefetch"}, False),
        ({"sec-purpose": "prefetch", "x-requested-with": "XMLHttpRequest"}, False),
        ({"sec-purpose": "prefetch", "hx-request": "true", "hx-boosted": "true"}, False),
        ({"sec-purpose": "prefetch", "turbo-frame": "list"}, False),
        ({"x-purpose": "preview"}, False),
        ({"purpose": "preview"}, False),
        # Turbo's hover prefetch: a click shows it as a visit, which runs its snippet.
        ({**TURBO_VISIT, **TURBO_PREFETCH}, True),
        ({**TURBO_VISIT, **TURBO_PREFETCH, "turbo-frame": "list"}, False),
        ({**TURBO_VISIT, "x-sec-purpose": "preview"}, False),
        ({**TURBO_VISIT}, False),
    ],
)
def test_page_prefetches(headers: dict[str, str], expected: bool) -> None:
    request = make_request(headers=headers)
    assert is_page_prefetch(request) is expected
    if expected:  # the server counts none of them
        assert not should_track_page(request, 200, WebOptions(), content_type="text/html")


class _CaseInsensitive(Mapping[str, str]):
    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = {name.title(): value for name, value in headers.items()}

    def __getitem__(self, name: str) -> str:
        return self._headers[name.title()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers)

    def __len__(self) -> int:
        return len(self._headers)


def test_routes_are_excluded_by_name_or_namespace() -> None:
    options = WebOptions(exclude_routes=["shop:cart", "billing"])
    for name, namespaces in (
        ("admin:index", ("admin",)),
        ("x", ("backoffice", "admin")),
        ("shop:cart", ("shop",)),
        ("invoice", ("billing",)),
    ):
        request = make_request(route_name=name, route_namespaces=namespaces)
        assert not should_track_page(request, 200, options, content_type=HTML), name
    kept = make_request(route_name="shop:list", route_namespaces=("shop",))
    assert should_track_page(kept, 200, options, content_type=HTML)
    assert set(DEFAULT_EXCLUDE_ROUTES) <= set(options.exclude_routes)


@pytest.mark.parametrize("name", sorted(LIST_DEFAULTS))
def test_every_list_option_extends_its_defaults(name: str) -> None:
    extra = {
        "page_methods": ["head"],
        "page_content_types": ["application/vnd.x+html"],
        "exclude_paths": ["^/x/"],
        "exclude_routes": ["x"],
        "bot_user_agents": ["robotron"],
        "redact_query_params": ["coupon"],
    }[name]
    extended = getattr(WebOptions.from_mapping({name: extra}), name)
    assert set(LIST_DEFAULTS[name]) < set(extended)
    replaced = WebOptions.from_mapping({name: extra, f"replace_default_{name}": True})
    assert not set(LIST_DEFAULTS[name]) & set(getattr(replaced, name))


def test_bot_user_agents_extend() -> None:
    options = WebOptions(bot_user_agents=["curl/"])
    assert options.bots.matches("curl/8.5") and options.bots.matches("Googlebot/2.1")


def test_bot_user_agents_are_matched_ignoring_case() -> None:
    options = WebOptions(bot_user_agents=["HeadlessChrome", "Python-urllib"])
    assert options.bots.matches("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0")
    assert options.bots.matches("python-urllib/3.11")
    assert not options.bots.matches("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0")


@pytest.mark.parametrize(
    "pattern",
    [
        "(?i)screaming frog",
        "(?x) screaming \\s frog",
        "(?x) screaming \\s frog  # our own crawler",
        "(?s)screaming.frog",
    ],
)
def test_a_bot_pattern_with_leading_flags_applies_them_to_itself(pattern: str) -> None:
    options = WebOptions(bot_user_agents=[pattern])
    assert options.bots.matches("Screaming Frog SEO Spider/19.0")
    assert not options.bots.matches("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0")


# -- identity ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ['{"id":1}', "%7B%22id%22%3A1%7D", "%22%7B%7D%22", "[1]", "true", "%22true%22", "null",
     "undefined", "%E9", "%ZZ", "a%00b", "a\tb", "a b", "x" * 101, "%22" + "y" * 120 + "%22",
     '"a"b"', "a;b", "<script>"],
)  # fmt: skip
def test_implausible_ids_are_absent(value: str) -> None:
    assert parse_id_cookie(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("u-42", "u-42"), ("%22u-42%22", "u-42"), ("auth0%7C123", "auth0|123"), ("42", "42"),
     ("ann%40example.com", "ann@example.com")],
)  # fmt: skip
def test_plausible_ids(value: str, expected: str) -> None:
    assert parse_id_cookie(value) == expected


def test_a_known_user_without_cookie_sends_user_id_only(client: Client, sent: Messages) -> None:
    tracker = RequestTracker(client, WebOptions(), make_request(), read_user=lambda: "42")
    tracker.analytics.track("Listed")
    assert tracker.cookie_to_set() is None
    tracker.finish(200, content_type=HTML)
    assert all(m["userId"] == "42" and "anonymousId" not in m for m in sent)


def test_the_user_is_read_when_the_call_is_made(client: Client, sent: Messages) -> None:
    user: list[str | None] = [None]
    tracker = RequestTracker(client, WebOptions(), make_request(), read_user=lambda: user[0])
    tracker.analytics.track("Before")
    user[0] = "7"  # authentication ran in the view
    tracker.analytics.track("After")
    assert tracker.analytics.user_id == "7"
    assert tracker.cookie_to_set() is not None  # the anonymous id was used: keep the visitor
    before, after = sent
    assert "userId" not in before and after["userId"] == "7"
    assert before["anonymousId"] == after["anonymousId"]


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS"])
def test_no_cookie_for_head_and_options(client: Client, method: str) -> None:
    tracker = RequestTracker(client, WebOptions(), make_request(method=method))
    assert tracker.cookie_to_set() is None


def test_identify_login(client: Client, sent: Messages) -> None:
    options = WebOptions(identify_traits=lambda user: {"plan": user["plan"]})
    tracker = RequestTracker(client, options, make_request())
    assert tracker.identify_login("9", {"plan": "pro"})
    [identify] = sent
    assert identify["userId"] == "9"
    assert identify["anonymousId"] == tracker.analytics.anonymous_id
    assert identify["traits"] == {"plan": "pro"}
    assert tracker.cookie_to_set() is not None
    off = RequestTracker(client, WebOptions(identify_on_login=False), make_request())
    assert not off.identify_login("9")


# -- origin and bounds ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "headers", "expected"),
    [
        (0, {"x-forwarded-proto": "https", "x-forwarded-host": "a.example"}, ("http", "h")),
        (1, {"x-forwarded-proto": "https", "x-forwarded-host": "a.example"},
         ("https", "a.example")),
        (1, {"forwarded": 'for=1.2.3.4;proto=https;host="b.example"',
             "x-forwarded-proto": "http", "x-forwarded-host": "c.example"}, ("https", "b.example")),
        (1, {"x-forwarded-proto": "gopher", "x-forwarded-host": "bad host"}, ("http", "h")),
        (1, {"x-forwarded-proto": "HTTPS"}, ("https", "h")),
        (("10.0.0.0/8",), {"x-forwarded-proto": "https"}, ("https", "h")),
        (("192.168.0.0/16",), {"x-forwarded-proto": "https"}, ("http", "h")),
        # Several values and no X-Forwarded-For to align them with: the peer's own, last.
        (1, {"x-forwarded-proto": "http, https", "x-forwarded-host": "a.example, b.example"},
         ("https", "b.example")),
        (2, {"x-forwarded-proto": "https,http"}, ("http", "h")),
        (("10.0.0.0/8",), {"x-forwarded-proto": "http,,https"}, ("https", "h")),
        # More values than hops: aligned from the right.
        (1, {"x-forwarded-for": "1.2.3.4", "x-forwarded-proto": "http,https,http"}, ("http", "h")),
        (2, {"x-forwarded-for": "1.2.3.4, 10.0.0.2", "x-forwarded-proto": "http,https,http"},
         ("https", "h")),
    ],
)  # fmt: skip
def test_forwarded_origin(trusted: Any, headers: dict[str, str], expected: Any) -> None:
    options = WebOptions(trusted_proxies=trusted)
    request = make_request(scheme="http", host="h", client_addr="10.0.0.1", headers=headers)
    assert forwarded_origin(request, options.trusted_proxies) == expected


def test_a_forwarded_host_the_framework_does_not_trust_is_ignored() -> None:
    request = make_request(
        scheme="http",
        host="h",
        client_addr="10.0.0.1",
        headers={"x-forwarded-host": "evil.example"},
        host_trusted=lambda host: host == "good.example",
    )
    assert forwarded_origin(request, 1) == ("http", "h")


@pytest.mark.parametrize(
    "header", ["a" * 300_000, "for=1.2.3.4;" + "proto" * 60_000, "x " * 150_000, "=" * 300_000]
)
def test_a_huge_forwarded_header_is_read_in_linear_time(header: str) -> None:
    """A client may send any Forwarded header (a proxy appends to it): read in a
    time that grows with its length, not with its square (hours for these)."""
    request = make_request(
        scheme="http", host="h", client_addr="10.0.0.1", headers={"forwarded": header}
    )
    done = threading.Event()

    def read() -> None:
        client_ip(request, WebOptions(trusted_proxies=("10.0.0.0/8",)).trusted_proxies)
        forwarded_origin(request, 1)
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(60), "reading the Forwarded header has not ended"


def test_request_derived_context_is_bounded() -> None:
    request = make_request(
        path="/" + "p" * 70_000,
        query_string="utm_campaign=" + "c" * 12_000 + "&q=%E9" * 5000,
        headers={
            "user-agent": "U" * 70_000,
            "referer": "https://r.example/" + "r" * 70_000,
            "accept-language": "en-" + "x" * 70_000,
        },
    )
    context = request_context(request, WebOptions())
    assert len(json.dumps(context)) < 12_000
    page = context["page"]
    assert len(page["path"]) == 2048 and len(page["search"]) <= 2049
    assert len(page["referrer"]) == 2048 and len(context["userAgent"]) == 512
    assert len(context["campaign"]["name"]) == 256
    assert "locale" not in context


def test_a_cut_never_splits_an_escape() -> None:
    request = make_request(query_string="a=" + "%E9" * 1000)
    search = request_context(request, WebOptions())["page"]["search"]
    assert search.endswith("%E9") and len(search) <= 2049


def test_a_huge_campaign_never_makes_a_view_call_raise(client: Client, sent: Messages) -> None:
    request = make_request(query_string="utm_campaign=" + "c" * 12_000 + "&utm_x=" + "y" * 30_000)
    tracker = RequestTracker(client, WebOptions(), request)
    tracker.analytics.track("Viewed", {"n": 1})
    assert sent[0]["event"] == "Viewed"


def test_wire_path() -> None:
    assert wire_path(b"/caf\xe9/\xc3\xa9 x") == "/caf%E9/%C3%A9%20x"
    assert wire_path("/caf%E9/\u00e9") == "/caf%E9/%C3%A9"


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("ajs_anonymous_id=app-id-2; Path=/; SameSite=Lax", "app-id-2"),
        ('ajs_anonymous_id="app-id-2"; Path=/', "app-id-2"),  # quoted by the framework
        ('ajs_anonymous_id="\\"app-id-2\\""; Path=/', '"app-id-2"'),  # JSON-quoted
        ("ajs_anonymous_id=%22app-id-2%22; Path=/", "%22app-id-2%22"),
        ("ajs_anonymous_id=app-id-2; Max-Age=0; Path=/", None),  # a deletion
        ("ajs_anonymous_id=app-id-2; expires=Thu, 01 Jan 1970 00:00:00 GMT", None),
        ("ajs_anonymous_id=app-id-2; Max-Age=abc", "app-id-2"),  # ignored, as browsers do
        ("ajs_anonymous_id=app-id-2; expires=Fri, 01 Jan 2100 00:00:00 GMT", "app-id-2"),
        # Max-Age wins over Expires, as in browsers.
        (
            "ajs_anonymous_id=app-id-2; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60",
            "app-id-2",
        ),
    ],
)
def test_the_value_a_set_cookie_line_stores(line: str, value: str | None) -> None:
    assert set_cookie_value(line) == value


@pytest.mark.parametrize(
    ("lines", "value"),
    [
        (["a=x; Path=/", "a=; Max-Age=0; Path=/"], None),  # set, then deleted
        (["a=x; Path=/", "a=; Max-Age=0; Path=/legacy"], "x"),  # an old copy's deletion
        (["a=x; Domain=example.com; Path=/", "a=; Max-Age=0; Path=/"], "x"),  # moved
        (["a=1; Path=/", "a=2; Path=/"], "2"),
        (["a=x; Path=/account"], None),  # another path's cookie
    ],
)
def test_the_value_a_browser_keeps_for_the_site(lines: list[str], value: str | None) -> None:
    assert kept_cookie_value(lines) == value
