// The run's options: their checks, and the error that names them by field.
#include "train/options.h"

#include <cmath>

#include "train/objective_head.h"

namespace clip::train {
namespace {

std::string render(const std::vector<OptionError::Piece>& pieces,
                   const std::function<std::string(const std::string&)>& name_of) {
  std::string out;
  for (const OptionError::Piece& p : pieces) out += p.is_option ? name_of(p.text) : p.text;
  return out;
}

}  // namespace

OptionError::OptionError(std::vector<Piece> pieces, ErrorKind kind)
    : Error(render(pieces, [](const std::string& field) { return field; }), kind), pieces_(std::move(pieces)) {}

std::string OptionError::message(const std::function<std::string(const std::string& field)>& name_of) const {
  return render(pieces_, name_of);
}

void validate_options(const TrainOptions& o, int world_size) {
  auto require = [](bool ok, std::vector<OptionError::Piece> what) {
    if (!ok) throw OptionError(std::move(what));
  };
  require(o.batch_size > 0, {option("batch_size"), {" must be positive, found " + std::to_string(o.batch_size)}});
  require(o.batch_size % world_size == 0,
          {option("batch_size"),
           {" (" + std::to_string(o.batch_size) + ", the global batch) must be divisible by the world size " +
            std::to_string(world_size)}});
  const int per_rank = o.batch_size / world_size;
  require(
      o.accum_steps > 0 && per_rank % o.accum_steps == 0,
      {option("accum_steps"),
       {" must divide the per-rank batch (" + std::to_string(per_rank) + "), found " + std::to_string(o.accum_steps)}});
  require(o.dist_timeout_s > 0, {option("dist_timeout_s"), {" must be positive"}});
  require(o.precision != Precision::kInt8,
          {option("precision"), {" int8 is for inference only; training runs in fp32 or bf16"}});
  require(!(o.local_loss && o.loss == LossKind::kSigLip),
          {option("local_loss"), {" applies to the contrastive loss, not to siglip"}});
  require(o.epochs > 0 && std::isfinite(o.epochs),
          {option("epochs"), {" must be a positive number, found " + c10::str(o.epochs)}});
  require(o.max_steps >= 0, {option("max_steps"), {" must not be negative"}});
  require(o.warmup_steps >= 0, {option("warmup_steps"), {" must not be negative"}});
  require(o.grad_clip_norm >= 0, {option("grad_clip_norm"), {" must not be negative"}});
  require(o.keep_checkpoints >= 1, {option("keep_checkpoints"), {" must be at least 1"}});
  require(o.save_every >= 0 && o.eval_every >= 0 && o.log_every > 0,
          {option("save_every"), {"/"}, option("eval_every"), {" must be >= 0, "}, option("log_every"), {" > 0"}});
  require(!(o.lock_image && o.lock_text),
          {option("lock_image"), {" and "}, option("lock_text"), {" together leave nothing to train"}});
  require(!o.out_dir.empty(), {option("out_dir"), {" must name a folder"}});
  require(o.objective == Objective::kContrastive || (o.loss == LossKind::kContrastive && !o.local_loss),
          {option("loss"),
           {" and "},
           option("local_loss"),
           {" apply to the contrastive objective, not to "},
           option("objective"),
           {std::string(" ") + objective_name(o.objective)}});
  require(!(o.objective == Objective::kBowPredict && o.lock_image),
          {option("lock_image"), {" leaves "}, option("objective"), {" bow-predict only its head to train"}});
}

}  // namespace clip::train
