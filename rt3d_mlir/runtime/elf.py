"""Checking a shared object before ``dlopen``: complete, for a known machine, an rt3d artifact.

``dlopen`` maps a file and runs its constructors before the caller can look
at it: a truncated artifact dies with SIGBUS or SIGSEGV, a foreign library
runs its code. :func:`read_elf` therefore reads the ELF headers from the
file first and checks that every segment and section lies inside it,
collects the exported dynamic symbols and reads the artifact's info
section (``rt3d_mlir.contracts.shared_object``). Standard library only.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from rt3d_mlir.contracts.shared_object import INFO_SECTION
from rt3d_mlir.errors import ArtifactError

ELF_MAGIC = b"\x7fELF"
ELF_MACHINES = {0x3E: "x86_64", 0xB7: "aarch64"}
_ET_DYN = 3
_PT_LOAD, _PT_DYNAMIC = 1, 2
_SHT_NOBITS, _SHT_DYNSYM = 8, 11
_STB_GLOBAL, _STB_WEAK = 1, 2
_MAX_TABLE = 64 << 20  # bytes of a symbol/string table or the info section we are willing to read


@dataclass
class ElfFile:
    machine: str  # "x86_64", "aarch64" or "unknown (0x..)"
    exported: set[str] = field(default_factory=set)  # defined global/weak dynamic symbols
    sections: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (offset, size)
    info: dict[str, Any] | None = None  # the rt3d info section's JSON, if present


class _Bad(Exception):
    pass


def _read(f: BinaryIO, offset: int, size: int, file_size: int, what: str) -> bytes:
    if offset < 0 or size < 0 or offset + size > file_size:
        raise _Bad(f"its {what} lies past the end of the file (truncated?)")
    if size > _MAX_TABLE:
        raise _Bad(f"its {what} is implausibly large ({size} bytes)")
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise _Bad(f"its {what} cannot be read (truncated?)")
    return data


def _c_string(table: bytes, offset: int) -> str:
    end = table.find(b"\0", offset)
    return table[offset : end if end >= 0 else len(table)].decode("utf-8", errors="replace")


def is_elf(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == ELF_MAGIC


def read_elf(path: str) -> ElfFile:
    """Check that ``path`` is a complete 64-bit little-endian ELF shared object and describe it.

    Raises ArtifactError with one line naming the problem.
    """
    try:
        return _read_elf(path)
    except _Bad as err:
        raise ArtifactError(f"'{path}' is not a valid shared object: {err}") from None
    except OSError as err:
        raise ArtifactError(f"cannot read '{path}': {err.strerror}") from None


def _read_elf(path: str) -> ElfFile:
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        header = f.read(64)
        if len(header) < 64 or header[:4] != ELF_MAGIC:
            raise _Bad("no complete ELF header")
        if header[4] != 2 or header[5] != 1:
            raise _Bad("not a 64-bit little-endian ELF file")
        (e_type, e_machine, _version, _entry, phoff, shoff, _flags, ehsize, phentsize, phnum,
         shentsize, shnum, shstrndx) = struct.unpack_from("<HHIQQQIHHHHHH", header, 16)
        machine = ELF_MACHINES.get(e_machine, f"unknown (0x{e_machine:x})")
        if e_type != _ET_DYN:
            raise _Bad("not a shared object (ELF type is not ET_DYN)")
        if ehsize != 64 or phentsize != 56 or shentsize != 64 or phnum == 0 or shnum == 0:
            raise _Bad("malformed ELF header")
        programs = _read(f, phoff, phnum * 56, size, "program header table")
        has_dynamic = False
        for i in range(phnum):
            p_type, _p_flags, p_offset, _vaddr, _paddr, p_filesz, p_memsz, _align = struct.unpack_from(
                "<IIQQQQQQ", programs, i * 56
            )
            if p_type in (_PT_LOAD, _PT_DYNAMIC):
                if p_offset + p_filesz > size:
                    raise _Bad(f"segment {i} lies past the end of the file (truncated?)")
                if p_filesz > p_memsz:
                    raise _Bad(f"segment {i} is malformed")
            has_dynamic |= p_type == _PT_DYNAMIC
        if not has_dynamic:
            raise _Bad("it has no dynamic segment")
        table = _read(f, shoff, shnum * 64, size, "section header table")
        headers = [struct.unpack_from("<IIQQQQIIQQ", table, i * 64) for i in range(shnum)]
        for i, (_name, sh_type, _flags, _addr, sh_offset, sh_size, *_rest) in enumerate(headers):
            if sh_type != _SHT_NOBITS and sh_offset + sh_size > size:
                raise _Bad(f"section {i} lies past the end of the file (truncated?)")
        if shstrndx >= shnum:
            raise _Bad("malformed section name table index")
        names = _read(f, headers[shstrndx][4], headers[shstrndx][5], size, "section name table")
        elf = ElfFile(machine)
        for name_offset, _type, _flags, _addr, sh_offset, sh_size, *_rest in headers:
            elf.sections[_c_string(names, name_offset)] = (sh_offset, sh_size)
        for _name, sh_type, _flags, _addr, sh_offset, sh_size, sh_link, _info, _align, entsize in headers:
            if sh_type != _SHT_DYNSYM:
                continue
            if entsize != 24 or sh_link >= shnum:
                raise _Bad("malformed dynamic symbol table")
            symbols = _read(f, sh_offset, sh_size, size, "dynamic symbol table")
            strings = _read(f, headers[sh_link][4], headers[sh_link][5], size, "dynamic string table")
            for k in range(sh_size // 24):
                st_name, st_info, st_other, st_shndx = struct.unpack_from("<IBBH", symbols, k * 24)
                if st_info >> 4 in (_STB_GLOBAL, _STB_WEAK) and st_shndx != 0 and (st_other & 3) == 0:
                    elf.exported.add(_c_string(strings, st_name))
        if INFO_SECTION in elf.sections:
            offset, length = elf.sections[INFO_SECTION]
            raw = _read(f, offset, length, size, "rt3d info section").split(b"\0", 1)[0]
            try:
                info = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise _Bad("its rt3d info section is not valid JSON") from None
            if not isinstance(info, dict):
                raise _Bad("its rt3d info section is not a JSON object")
            elf.info = info
    return elf


def cpu_features() -> set[str] | None:
    """This CPU's instruction-set extensions as Linux names them, or None if unknown."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return set(value.split())
    except OSError:
        pass
    return None
