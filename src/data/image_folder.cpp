// Image folders in the ImageNet layout: root/<class>/**/<image>, classes in sorted folder order.
#include <algorithm>
#include <filesystem>

#include "clip/data.h"
#include "clip/error.h"

namespace clip::data {
namespace {

namespace fs = std::filesystem;

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp" || ext == ".bmp" || ext == ".gif";
}

class ImageFolderDataset : public Dataset {
 public:
  explicit ImageFolderDataset(const std::string& root) : root_(root) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) throw Error(root + ": not a folder (expected one sub-folder of images per class)");
    std::vector<fs::path> classes;
    for (const auto& entry : fs::directory_iterator(root, ec))
      if (entry.is_directory(ec)) classes.push_back(entry.path());
    if (ec) throw Error(root + ": cannot list the folder: " + ec.message());
    if (classes.empty()) throw Error(root + ": no class sub-folders (expected root/<class>/<image>)");
    std::sort(classes.begin(), classes.end());
    for (size_t c = 0; c < classes.size(); ++c) {
      class_names_.push_back(classes[c].filename().string());
      std::vector<std::string> files;
      for (auto it = fs::recursive_directory_iterator(classes[c], fs::directory_options::follow_directory_symlink, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        if (it->is_regular_file(ec) && is_image_name(it->path())) files.push_back(it->path().string());
      if (ec) throw Error(classes[c].string() + ": cannot list the folder: " + ec.message());
      std::sort(files.begin(), files.end());  // directory order is arbitrary: sort for reproducible runs
      for (auto& f : files) items_.push_back({std::move(f), static_cast<int>(c)});
    }
    if (items_.empty())
      throw Error(root + ": no images in the class folders (extensions .jpg .jpeg .png .webp .bmp .gif)");
  }

  size_t size() const override { return items_.size(); }
  std::vector<std::string> class_names() const override { return class_names_; }
  std::string description() const override {
    return "image folder " + root_ + " (" + std::to_string(items_.size()) + " examples, " +
           std::to_string(class_names_.size()) + " classes)";
  }
  Example at(size_t index) const override {
    if (index >= items_.size())
      throw Error(root_ + ": example " + std::to_string(index) + " out of range (" + std::to_string(items_.size()) +
                  " images)");
    Example ex;
    ex.source = items_[index].path;
    ex.image_path = items_[index].path;
    ex.label = items_[index].label;
    return ex;
  }

 private:
  struct Item {
    std::string path;
    int label;
  };
  std::string root_;
  std::vector<std::string> class_names_;
  std::vector<Item> items_;
};

}  // namespace

std::unique_ptr<Dataset> open_image_folder(const std::string& root) {
  return std::make_unique<ImageFolderDataset>(root);
}

}  // namespace clip::data
