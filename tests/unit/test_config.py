"""Settings: flags > CAMPAIGNER_* > standard variables > TOML file > defaults."""

from __future__ import annotations

import pathlib

import pytest

from campaigner import errors
from campaigner.config import Settings, load_settings, mask_url

FILE_URL = "postgresql://file@db.example.test/crm"
STANDARD_URL = "postgresql://standard@db.example.test/crm"
CAMPAIGNER_URL = "postgresql://campaigner@db.example.test/crm"


@pytest.fixture
def config_file(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "campaigner.toml"
    path.write_text(
        f"""
database_url = "{FILE_URL}"
connect_timeout = 7
kafka_bootstrap_servers = "file-broker:9092"
kafka_timeout = 12.5

[kafka]
"security.protocol" = "SASL_SSL"
"sasl.password" = "file-secret"
"""
    )
    return path


def test_load_settings__defaults_without_any_source() -> None:
    settings = load_settings(environ={})

    assert settings == Settings()


def test_load_settings__file_values(config_file: pathlib.Path) -> None:
    settings = load_settings(environ={}, config_file=config_file)

    assert settings == Settings(
        database_url=FILE_URL,
        connect_timeout=7,
        kafka_bootstrap_servers="file-broker:9092",
        kafka_timeout=12.5,
        kafka_properties={
            "security.protocol": "SASL_SSL",
            "sasl.password": "file-secret",
        },
    )


@pytest.mark.parametrize(
    ("flags", "environ", "expected"),
    [
        ({}, {}, FILE_URL),
        ({}, {"DATABASE_URL": STANDARD_URL}, STANDARD_URL),
        (
            {},
            {"DATABASE_URL": STANDARD_URL, "CAMPAIGNER_DATABASE_URL": CAMPAIGNER_URL},
            CAMPAIGNER_URL,
        ),
        (
            {"database_url": "postgresql://flag@db.example.test/crm"},
            {"DATABASE_URL": STANDARD_URL, "CAMPAIGNER_DATABASE_URL": CAMPAIGNER_URL},
            "postgresql://flag@db.example.test/crm",
        ),
    ],
)
def test_load_settings__database_url_precedence(
    config_file: pathlib.Path,
    flags: dict[str, str],
    environ: dict[str, str],
    expected: str,
) -> None:
    settings = load_settings(flags=flags, environ=environ, config_file=config_file)

    assert settings.database_url == expected


@pytest.mark.parametrize(
    ("flags", "environ", "expected"),
    [
        ({}, {}, "file-broker:9092"),
        ({}, {"KAFKA_BOOTSTRAP_SERVERS": "standard:9092"}, "standard:9092"),
        (
            {},
            {
                "KAFKA_BOOTSTRAP_SERVERS": "standard:9092",
                "CAMPAIGNER_KAFKA_BOOTSTRAP_SERVERS": "campaigner:9092",
            },
            "campaigner:9092",
        ),
        (
            {"kafka_bootstrap_servers": "flag:9092"},
            {
                "KAFKA_BOOTSTRAP_SERVERS": "standard:9092",
                "CAMPAIGNER_KAFKA_BOOTSTRAP_SERVERS": "campaigner:9092",
            },
            "flag:9092",
        ),
    ],
)
def test_load_settings__kafka_bootstrap_precedence(
    config_file: pathlib.Path,
    flags: dict[str, str],
    environ: dict[str, str],
    expected: str,
) -> None:
    settings = load_settings(flags=flags, environ=environ, config_file=config_file)

    assert settings.kafka_bootstrap_servers == expected


@pytest.mark.parametrize(
    ("flags", "environ", "expected"),
    [
        ({}, {}, 7),
        ({}, {"CAMPAIGNER_CONNECT_TIMEOUT": "4"}, 4),
        ({"connect_timeout": 2}, {"CAMPAIGNER_CONNECT_TIMEOUT": "4"}, 2),
        ({"connect_timeout": None}, {"CAMPAIGNER_CONNECT_TIMEOUT": "4"}, 4),
    ],
)
def test_load_settings__timeout_precedence(
    config_file: pathlib.Path,
    flags: dict[str, object],
    environ: dict[str, str],
    expected: int,
) -> None:
    settings = load_settings(flags=flags, environ=environ, config_file=config_file)

    assert settings.connect_timeout == expected


def test_load_settings__config_file_from_environment(config_file: pathlib.Path) -> None:
    settings = load_settings(environ={"CAMPAIGNER_CONFIG": str(config_file)})

    assert settings.database_url == FILE_URL


def test_load_settings__kafka_properties_from_environment_override_the_file(
    config_file: pathlib.Path,
) -> None:
    environ = {
        "CAMPAIGNER_KAFKA__SASL_PASSWORD": "env-secret",
        "CAMPAIGNER_KAFKA__SASL_USERNAME": "campaigner",
    }

    settings = load_settings(environ=environ, config_file=config_file)

    assert settings.kafka_properties == {
        "security.protocol": "SASL_SSL",
        "sasl.password": "env-secret",
        "sasl.username": "campaigner",
    }


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://campaigner:s3cret-pw@db.example.test:5432/crm",
            "postgresql://campaigner:***@db.example.test:5432/crm",
        ),
        (
            "postgresql://campaigner@db.example.test/crm",
            "postgresql://campaigner@db.example.test/crm",
        ),
        (
            "host=db.example.test user=campaigner password=s3cret-pw dbname=crm",
            "host=db.example.test user=campaigner password=*** dbname=crm",
        ),
        (
            "postgresql://db.example.test/crm?user=campaigner&password=s3cret-pw",
            "postgresql://db.example.test/crm?user=campaigner&password=***",
        ),
        ("", ""),
    ],
)
def test_mask_url__hides_the_password(url: str, expected: str) -> None:
    assert mask_url(url) == expected


def test_mask_url__hides_a_quoted_password_with_spaces() -> None:
    masked = mask_url("host=db.example.test password='s3cret pw tail' dbname=crm")

    assert "tail" not in masked


def test_settings_repr__masks_secrets() -> None:
    settings = Settings(
        database_url="postgresql://campaigner:s3cret-pw@db.example.test/crm",
        kafka_properties={
            "sasl.password": "kafka-s3cret",
            "ssl.key.password": "key-s3cret",
        },
    )

    text = repr(settings)

    assert (
        "s3cret" in text,
        "postgresql://campaigner:***@db.example.test/crm" in text,
    ) == (
        False,
        True,
    )


def test_settings_shown__masks_secrets() -> None:
    settings = Settings(
        database_url="postgresql://campaigner:s3cret-pw@db.example.test/crm",
        kafka_properties={
            "sasl.password": "kafka-s3cret",
            "security.protocol": "SASL_SSL",
        },
    )

    shown = settings.shown()

    assert (shown["database_url"], shown["kafka_properties"]) == (
        "postgresql://campaigner:***@db.example.test/crm",
        {"sasl.password": "***", "security.protocol": "SASL_SSL"},
    )


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        ({"CAMPAIGNER_CONNECT_TIMEOUT": "abc"}, "CAMPAIGNER_CONNECT_TIMEOUT"),
        ({"CAMPAIGNER_CONNECT_TIMEOUT": "1.5"}, "CAMPAIGNER_CONNECT_TIMEOUT"),
        ({"CAMPAIGNER_KAFKA_TIMEOUT": "soon"}, "CAMPAIGNER_KAFKA_TIMEOUT"),
        ({"CAMPAIGNER_STATEMENT_TIMEOUT": "0"}, "CAMPAIGNER_STATEMENT_TIMEOUT"),
        ({"CAMPAIGNER_CONNECT_TIMEOUT": "-3"}, "CAMPAIGNER_CONNECT_TIMEOUT"),
        ({"CAMPAIGNER_CUSTOMER_TABLE": "user_data; DROP"}, "CAMPAIGNER_CUSTOMER_TABLE"),
        ({"CAMPAIGNER_CUSTOMER_KEY": "1id"}, "CAMPAIGNER_CUSTOMER_KEY"),
    ],
)
def test_load_settings__invalid_value_names_the_variable(
    environ: dict[str, str], fragment: str
) -> None:
    with pytest.raises(errors.ConfigurationError) as caught:
        load_settings(environ=environ)

    assert (fragment in caught.value.message, caught.value.exit_code) == (
        True,
        errors.EXIT_CONFIG,
    )


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("database_url = [", "is not valid TOML"),
        ('databse_url = "postgresql://x"', "unknown setting(s) databse_url"),
        ('kafka = "not a table"', "[kafka] must be a table"),
        ('connect_timeout = "abc"', "connect_timeout"),
    ],
)
def test_load_settings__invalid_file(
    tmp_path: pathlib.Path, content: str, fragment: str
) -> None:
    path = tmp_path / "campaigner.toml"
    path.write_text(content)

    with pytest.raises(errors.ConfigurationError) as caught:
        load_settings(environ={}, config_file=path)

    assert fragment in caught.value.message


def test_load_settings__missing_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "absent.toml"

    with pytest.raises(errors.ConfigurationError) as caught:
        load_settings(environ={}, config_file=path)

    assert (
        caught.value.message
        == f"cannot read config file {path}: No such file or directory"
    )
