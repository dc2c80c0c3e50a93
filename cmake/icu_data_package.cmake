# Build-time script (cmake -P): makes the C source of an ICU common-data package that holds only ITEMS, taken
# from Debian's full data library, following ICU's "Customizing ICU's data library" (icupkg, genccode).
#
#   -DDATA_ARCHIVE=libicudata.a   the full data: one object whose .rodata is the common .dat package
#   -DPACKAGE=icudt72l            the package name the items live under (data version + byte order/charset)
#   -DENTRY=icudt72               the symbol ICU's libicuuc.a looks for is ${ENTRY}_dat
#   -DITEMS=a.nrm,b.cfu           the items to keep
#   -DAR, -DOBJCOPY, -DICUPKG, -DGENCCODE   the tools
#   -DWORK_DIR=dir  -DOUTPUT=file.c
foreach(var DATA_ARCHIVE PACKAGE ENTRY ITEMS AR OBJCOPY ICUPKG GENCCODE WORK_DIR OUTPUT)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "icu_data_package.cmake: ${var} is not set")
  endif()
endforeach()
string(REPLACE "," ";" ITEMS "${ITEMS}")

function(run)
  execute_process(COMMAND ${ARGV} WORKING_DIRECTORY ${WORK_DIR} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGV}")
    message(FATAL_ERROR "ICU data: `${cmd}` failed (${rc}): ${out}${err}")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR}/full ${WORK_DIR}/items ${WORK_DIR}/trimmed ${WORK_DIR}/c)

# The archive holds one object (icudt72l_dat.o) whose read-only data is the package, byte for byte.
execute_process(COMMAND ${AR} t ${DATA_ARCHIVE} OUTPUT_VARIABLE members OUTPUT_STRIP_TRAILING_WHITESPACE
                RESULT_VARIABLE rc)
string(REPLACE "\n" ";" members "${members}")
list(LENGTH members count)
if(NOT rc EQUAL 0 OR NOT count EQUAL 1)
  message(FATAL_ERROR "ICU data: expected one object in ${DATA_ARCHIVE}, found: ${members}")
endif()
run(${AR} x ${DATA_ARCHIVE} ${members})
# icupkg takes the package name from the file name.
run(${OBJCOPY} -O binary --only-section=.rodata ${members} full/${PACKAGE}.dat)

string(REPLACE ";" "\n" item_lines "${ITEMS}")
file(WRITE ${WORK_DIR}/items.txt "${item_lines}\n")
# icupkg -x says nothing about an item the package lacks: check each one.
run(${ICUPKG} -x items.txt -d items full/${PACKAGE}.dat)
foreach(item ${ITEMS})
  if(NOT EXISTS ${WORK_DIR}/items/${item})
    message(FATAL_ERROR "ICU data: ${DATA_ARCHIVE} has no item `${item}` (list them: icupkg -l)")
  endif()
endforeach()
run(${ICUPKG} -a items.txt -s items new trimmed/${PACKAGE}.dat)

# genccode names the array after the file (ICU 72 ignores --entrypoint for C output): ${ENTRY}.dat gives
# ${ENTRY}_dat, the symbol libicuuc.a resolves.
file(COPY_FILE ${WORK_DIR}/trimmed/${PACKAGE}.dat ${WORK_DIR}/c/${ENTRY}.dat)
run(${GENCCODE} -q -d c c/${ENTRY}.dat)
file(COPY_FILE ${WORK_DIR}/c/${ENTRY}_dat.c ${OUTPUT})
