"""runtime.machine: the CPU line that reports which time models carry."""

from homeloc.runtime.machine import cpu_flags, cpu_line, int8_dot

EPYC = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\n"
XEON = "model name\t: Intel Xeon\nflags\t\t: avx2 avx512f avx512_vnni\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd asimddp\nCPU part\t: 0xd0c\n"


def test_int8_dot_product_is_named_from_the_flags():
    assert int8_dot(cpu_flags(EPYC)[1]) == "AVX2 without VNNI"
    assert int8_dot(cpu_flags(XEON)[1]) == "VNNI"
    assert int8_dot(cpu_flags(ARM)[1]) == "Arm dot product"
    assert int8_dot(set()) == "none known"


def test_cpu_line_names_the_model_and_cores():
    assert cpu_flags(EPYC)[0] == "AMD EPYC"
    line = cpu_line(EPYC)
    assert line.startswith("AMD EPYC, ") and line.endswith("cores, int8 dot product: AVX2 without VNNI")
    assert cpu_flags("")[0]  # no cpuinfo: platform's name or "unknown CPU", never empty
    assert "int8 dot product" in cpu_line()  # this machine
