# ICU, linked statically with a data library that holds only what edgeguard reads: NFKC normalisation
# (nfkc.nrm) and the Unicode TS #39 confusable skeletons of uspoof (confusables.cfu), for key rules
# (filters/key_forms.cc). Character properties, case mapping and NFC/NFD are compiled into libicuuc itself.
# Debian's shared libicudata is 31 MB of data for every locale; this one is about 100 KB, so the runtime image
# ships no ICU package. Every build links it, so every test runs on exactly the data the image carries: an item
# missing here makes `edgeguard check` refuse the rules and the key_forms tests fail.
#
# Defines edgeguard_icu (include dirs, libicui18n.a, libicuuc.a, the trimmed data).
set(EDGEGUARD_ICU_DATA_ITEMS nfkc.nrm confusables.cfu)

find_package(ICU REQUIRED COMPONENTS uc i18n)
string(REGEX MATCH "^[0-9]+" EDGEGUARD_ICU_MAJOR "${ICU_VERSION}")
if(NOT EDGEGUARD_ICU_MAJOR)
  message(FATAL_ERROR "ICU: cannot read the major version from ICU_VERSION=\"${ICU_VERSION}\"")
endif()
message(STATUS "ICU ${ICU_VERSION}: static, data items ${EDGEGUARD_ICU_DATA_ITEMS}")

set(icu_hint "install libicu-dev and icu-devtools (scripts/setup.sh --build)")
foreach(part uc i18n data)
  string(TOUPPER ${part} upper)
  find_library(EDGEGUARD_ICU_${upper}_ARCHIVE NAMES ${CMAKE_STATIC_LIBRARY_PREFIX}icu${part}${CMAKE_STATIC_LIBRARY_SUFFIX})
  if(NOT EDGEGUARD_ICU_${upper}_ARCHIVE)
    message(FATAL_ERROR "ICU: no static libicu${part} found; ${icu_hint}")
  endif()
endforeach()
foreach(tool icupkg genccode)
  string(TOUPPER ${tool} upper)
  find_program(EDGEGUARD_${upper} ${tool})
  if(NOT EDGEGUARD_${upper})
    message(FATAL_ERROR "ICU: `${tool}` not found (it builds the trimmed ICU data); ${icu_hint}")
  endif()
endforeach()
if(NOT CMAKE_OBJCOPY)
  message(FATAL_ERROR "ICU: objcopy not found (binutils); it reads the full data out of libicudata.a")
endif()

# The names ICU derives from its version: the package is icudt<major><l|b> (byte order; ASCII charset), the
# symbol libicuuc.a resolves is icudt<major>_dat.
if(CMAKE_C_BYTE_ORDER STREQUAL "BIG_ENDIAN")
  set(icu_order b)
else()
  set(icu_order l)
endif()
set(EDGEGUARD_ICU_DATA_ENTRY icudt${EDGEGUARD_ICU_MAJOR})
set(EDGEGUARD_ICU_DATA_C ${CMAKE_BINARY_DIR}/icu_data/${EDGEGUARD_ICU_DATA_ENTRY}_dat.c)
string(REPLACE ";" "," icu_items_arg "${EDGEGUARD_ICU_DATA_ITEMS}")
add_custom_command(
  OUTPUT ${EDGEGUARD_ICU_DATA_C}
  COMMAND ${CMAKE_COMMAND} -DDATA_ARCHIVE=${EDGEGUARD_ICU_DATA_ARCHIVE}
          -DPACKAGE=${EDGEGUARD_ICU_DATA_ENTRY}${icu_order} -DENTRY=${EDGEGUARD_ICU_DATA_ENTRY}
          -DITEMS=${icu_items_arg} -DAR=${CMAKE_AR} -DOBJCOPY=${CMAKE_OBJCOPY} -DICUPKG=${EDGEGUARD_ICUPKG}
          -DGENCCODE=${EDGEGUARD_GENCCODE} -DWORK_DIR=${CMAKE_BINARY_DIR}/icu_data/work
          -DOUTPUT=${EDGEGUARD_ICU_DATA_C} -P ${CMAKE_CURRENT_LIST_DIR}/icu_data_package.cmake
  DEPENDS ${EDGEGUARD_ICU_DATA_ARCHIVE} ${CMAKE_CURRENT_LIST_DIR}/icu_data_package.cmake
          ${CMAKE_CURRENT_LIST_FILE}
  COMMENT "ICU data with ${EDGEGUARD_ICU_DATA_ITEMS}"
  VERBATIM)
add_library(edgeguard_icu_data STATIC ${EDGEGUARD_ICU_DATA_C})
target_include_directories(edgeguard_icu_data SYSTEM PRIVATE ${ICU_INCLUDE_DIRS})

# Imported archives chained so that the link line reads libicui18n.a libicuuc.a <data>: each archive comes
# before the one that resolves its symbols.
add_library(edgeguard_icu_uc STATIC IMPORTED)
set_target_properties(edgeguard_icu_uc PROPERTIES IMPORTED_LOCATION ${EDGEGUARD_ICU_UC_ARCHIVE}
  INTERFACE_LINK_LIBRARIES "edgeguard_icu_data;Threads::Threads;${CMAKE_DL_LIBS}")
add_library(edgeguard_icu_i18n STATIC IMPORTED)
set_target_properties(edgeguard_icu_i18n PROPERTIES IMPORTED_LOCATION ${EDGEGUARD_ICU_I18N_ARCHIVE}
  INTERFACE_LINK_LIBRARIES edgeguard_icu_uc)
add_library(edgeguard_icu INTERFACE)
target_include_directories(edgeguard_icu SYSTEM INTERFACE ${ICU_INCLUDE_DIRS})
target_link_libraries(edgeguard_icu INTERFACE edgeguard_icu_i18n)
