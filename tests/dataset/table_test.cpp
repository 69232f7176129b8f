// CSV / TSV data sets: RFC 4180 quoting, columns, labels, bad records.
#include <gtest/gtest.h>

#include "clip/data.h"
#include "clip/error.h"
#include "temp_dir.h"

namespace clip::data {
namespace {

using clip::test::TempDir;

TEST(Table, QuotedFieldsWithSeparatorsNewlinesAndQuotes) {
  TempDir dir;
  dir.write("a.png", "x");
  dir.write("b.png", "x");
  const std::string csv = dir.write("t.csv",
                                    "filepath,title\n"
                                    "a.png,\"a cat, sitting\"\n"
                                    "b.png,\"she said \"\"hi\"\"\nover two lines\"\r\n"
                                    "\n"
                                    "a.png,plain\n");
  auto ds = open_table(csv);
  ASSERT_EQ(ds->size(), 3u);
  Example e0 = ds->at(0);
  EXPECT_TRUE(e0.ok()) << e0.error;
  EXPECT_EQ(e0.image_path, dir.file("a.png"));
  ASSERT_EQ(e0.captions.size(), 1u);
  EXPECT_EQ(e0.captions[0], "a cat, sitting");
  EXPECT_EQ(e0.source, "t.csv:2");
  Example e1 = ds->at(1);
  EXPECT_TRUE(e1.ok()) << e1.error;
  EXPECT_EQ(e1.captions[0], "she said \"hi\"\nover two lines");
  Example e2 = ds->at(2);
  EXPECT_EQ(e2.captions[0], "plain");
  EXPECT_EQ(e2.source, "t.csv:6");  // the quoted newline and the blank line count
  EXPECT_EQ(e2.label, -1);
  EXPECT_THROW(ds->at(3), Error);
}

TEST(Table, TsvIsTabSeparatedAndColumnsAreNamed) {
  TempDir dir;
  dir.write("img/a.jpg", "x");
  const std::string tsv = dir.write("t.tsv",
                                    "caption\tpath\n"
                                    "a, b\timg/a.jpg\n");
  TableOptions o;
  o.image_column = "path";
  o.caption_column = "caption";
  auto ds = open_table(tsv, o);
  ASSERT_EQ(ds->size(), 1u);
  EXPECT_EQ(ds->at(0).captions[0], "a, b");
  EXPECT_EQ(ds->at(0).image_path, dir.file("img/a.jpg"));
}

TEST(Table, MissingColumnNamesFileAndColumns) {
  TempDir dir;
  const std::string csv = dir.write("t.csv", "path,text\nx.png,y\n");
  try {
    open_table(csv);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("t.csv"), std::string::npos) << m;
    EXPECT_NE(m.find("\"filepath\""), std::string::npos) << m;
    EXPECT_NE(m.find("\"path\", \"text\""), std::string::npos) << m;
  }
  EXPECT_THROW(open_table(dir.write("empty.csv", "")), Error);
  EXPECT_THROW(open_table(dir.file("absent.csv")), Error);
}

TEST(Table, BadRecordsAreReportedNotThrown) {
  TempDir dir;
  dir.write("a.png", "x");
  const std::string csv = dir.write("t.csv",
                                    "filepath,title\n"
                                    "missing.png,a dog\n"  // file absent
                                    "a.png,\n"             // empty caption
                                    "a.png,one,two\n"      // too many fields
                                    "a.png,\"bad\"x\n"     // text after the closing quote
                                    "a.png,fine\n"
                                    "a.png,\"never closed\n");
  auto ds = open_table(csv);
  ASSERT_EQ(ds->size(), 6u);
  EXPECT_NE(ds->at(0).error.find("not found"), std::string::npos) << ds->at(0).error;
  EXPECT_EQ(ds->at(1).error, "empty caption");
  EXPECT_NE(ds->at(2).error.find("found 3 fields, expected 2"), std::string::npos) << ds->at(2).error;
  EXPECT_NE(ds->at(3).error.find("after a closing quote"), std::string::npos) << ds->at(3).error;
  EXPECT_TRUE(ds->at(4).ok()) << ds->at(4).error;
  EXPECT_EQ(ds->at(4).source, "t.csv:6");
  EXPECT_NE(ds->at(5).error.find("not closed"), std::string::npos) << ds->at(5).error;
}

TEST(Table, LabelsByNameAreSortedAndByIndexKept) {
  TempDir dir;
  dir.write("a.png", "x");
  TableOptions o;
  o.caption_column = "";
  o.label_column = "label";
  auto names = open_table(dir.write("n.csv", "filepath,label\na.png,dog\na.png,cat\na.png,dog\na.png,\n"), o);
  EXPECT_EQ(names->class_names(), (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(names->at(0).label, 1);
  EXPECT_EQ(names->at(1).label, 0);
  EXPECT_EQ(names->at(3).error, "empty label");

  auto idx = open_table(dir.write("i.csv", "filepath,label\na.png,3\na.png,0\n"), o);
  EXPECT_TRUE(idx->class_names().empty());
  EXPECT_EQ(idx->at(0).label, 3);

  o.class_names = {"zero", "one"};
  auto given = open_table(dir.write("g.csv", "filepath,label\na.png,one\na.png,0\na.png,2\na.png,three\n"), o);
  EXPECT_EQ(given->at(0).label, 1);
  EXPECT_EQ(given->at(1).label, 0);
  EXPECT_NE(given->at(2).error.find("out of range"), std::string::npos) << given->at(2).error;
  EXPECT_NE(given->at(3).error.find("unknown class name \"three\""), std::string::npos) << given->at(3).error;
}

}  // namespace
}  // namespace clip::data
