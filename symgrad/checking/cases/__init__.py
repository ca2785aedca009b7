"""YAML case files (format version 1): schema and validation, YAML loading, files and folders."""

from symgrad.checking.cases.errors import CaseError
from symgrad.checking.cases.files import collect, is_case_file, load_cases, load_file, read_data
from symgrad.checking.cases.schema import DTYPES, KEYS, MODES, Case, InputSpec, case_from_dict, load_data

__all__ = ["DTYPES", "KEYS", "MODES", "Case", "CaseError", "InputSpec", "case_from_dict", "collect", "is_case_file",
           "load_cases", "load_data", "load_file", "read_data"]
